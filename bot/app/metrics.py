"""The Prometheus exposition served at ``/metrics`` (the instruments live in ``bot.core.metrics``)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
