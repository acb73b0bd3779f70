"""What the watcher is told: when it polls (``WatchTiming``) and how failures become alerts
(``AlertPolicy``). The app makes them from BOT_WATCH_*, BOT_REPEAT_WINDOW_HOURS,
BOT_UNDELIVERABLE_HOURS, BOT_DIGEST_* and BOT_MENTION_AUTHOR; tests make short ones."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.people import AuthorMentions
from bot.core.watcher.storm import DEFAULT_THRESHOLD, DEFAULT_WINDOW


@dataclass(frozen=True)
class WatchTiming:
    """A cycle every ``interval`` seconds (the lease lasts three of them); a first start, or a
    kind polled again after a pause, looks ``lookback`` seconds back; ``page_size`` events per
    list request."""

    interval: float
    lookback: float
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.lookback < 0 or self.page_size < 1:
            raise ValueError("need interval > 0, lookback >= 0 and page_size >= 1")


@dataclass(frozen=True)
class AlertPolicy:
    """How failures become alerts, beyond where they go (that is the router's)."""

    # Repeated failures of a pipeline on a branch within this many seconds of the series' open
    # alert go in its thread (0: every failure is its own alert).
    repeat_window: float = 0.0
    undeliverable_after: float = 24 * 3600.0  # an alert Slack refuses for good is retried this long
    # More than ``digest_threshold`` failures for one channel within ``digest_window`` seconds
    # are one digest message (0: never a digest).
    digest_threshold: int = DEFAULT_THRESHOLD
    digest_window: float = DEFAULT_WINDOW
    authors: AuthorMentions | None = None  # who pushed, to mention (BOT_MENTION_AUTHOR); None: nobody

    def __post_init__(self) -> None:
        if self.digest_threshold < 0 or self.digest_window <= 0:
            raise ValueError("need a digest threshold >= 0 and a digest window > 0")
