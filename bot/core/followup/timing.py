"""Timing and pacing of the follow-through: the per-tracker backoff settings and the global
poll budget (a token bucket on the tracker's clock, so tests drive it without sleeping).

Import the public names from :mod:`bot.core.followup`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class FollowupTiming:
    """How often to poll, for how long, and how the loop behaves. Defaults are for production;
    tests shrink them.

    Backoff per tracker: the first poll ``first_poll`` seconds after the action, then every
    ``initial_interval`` seconds, multiplied by ``backoff`` after each poll that saw no change
    (or failed), capped at ``max_interval``; back to ``initial_interval`` on a status change.
    Each delay is spread by ``±jitter`` (a fraction) so trackers started together drift apart.
    A tracker gives up ``max_hours`` after the action; all of them together read at most
    ``poll_budget`` executions a second (``PollBudget``).
    """

    first_poll: float = 5.0
    initial_interval: float = 5.0
    max_interval: float = 60.0
    backoff: float = 1.5
    jitter: float = 0.1
    concurrency: int = 8  # polls in flight at once, across all trackers
    max_batch: int = 50  # trackers read from the store per round
    lease_ttl: float = 30.0  # the "followups" lease; renewed every lease_ttl / 3
    idle: float = 1.0  # how long the loop waits when nothing is due
    stop_grace: float = 5.0  # stop() lets polls in flight finish for this long
    max_hours: float = 6.0  # BOT_FOLLOW_MAX_HOURS
    poll_budget: float = 2.0  # BOT_FOLLOW_POLL_BUDGET: execution reads per second, all trackers

    def __post_init__(self) -> None:
        for name in ("first_poll", "initial_interval", "max_interval", "lease_ttl", "idle", "max_hours"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_interval < self.initial_interval:
            raise ValueError("max_interval must be >= initial_interval")
        if self.backoff < 1:
            raise ValueError("backoff must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.concurrency < 1 or self.max_batch < 1:
            raise ValueError("concurrency and max_batch must be >= 1")
        if self.stop_grace < 0:
            raise ValueError("stop_grace must be >= 0")

    def next_poll(
        self, interval: float, *, changed: bool, rng: random.Random, retry_after: float | None = None
    ) -> tuple[float, float]:
        """(the tracker's new interval, the delay to its next poll): back to the start on a
        change, else backed off; jittered; never sooner than a rate limit's Retry-After."""
        if changed:
            interval = self.initial_interval
        else:
            interval = min(self.max_interval, max(self.initial_interval, interval * self.backoff))
        delay = interval * (1 + rng.uniform(-self.jitter, self.jitter)) if self.jitter else interval
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_interval * 5))
        return interval, delay


class PollBudget:
    """A token bucket: ``rate`` Code Stream reads per second across all trackers, bursts of at
    most ``capacity`` (one second's worth, at least one read).

    Time is whatever the caller passes (seconds, e.g. ``datetime.timestamp()``), so an injected
    clock drives it. ``take`` may run into debt (an extra event read on a re-render): the debt
    is paid back before the next poll, so over any window of ``w`` seconds at most
    ``capacity + rate * w`` reads are made.
    """

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is None:
            self._at = now
        elif now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def available(self, now: float) -> int:
        """Whole reads that may start now."""
        self._refill(now)
        return max(0, math.floor(self._tokens + 1e-9))

    def take(self, now: float, reads: float = 1.0) -> None:
        self._refill(now)
        self._tokens -= reads

    def wait_time(self, now: float) -> float:
        """Seconds until the next read may start (0 when one may start now)."""
        self._refill(now)
        missing = 1.0 - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate
