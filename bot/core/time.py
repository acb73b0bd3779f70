"""Time arithmetic the core and the renderers share: stored datetimes may come back naive."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(moment: datetime) -> datetime:
    """Naive datetimes (SQLite gives them back so) are taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def seconds_between(later: datetime, earlier: datetime) -> float:
    """``later - earlier`` in seconds; naive datetimes are taken as UTC."""
    return (aware(later) - aware(earlier)).total_seconds()
