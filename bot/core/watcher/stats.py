"""What one watcher cycle did: logged, counted in metrics, read by tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.codestream.models import EventKind


@dataclass
class KindStats:
    requests: int = 0  # list requests made (the client's own retries not counted)
    events: int = 0  # events listed
    new: int = 0  # events past the cursor
    failures: int = 0  # new events that are failures
    alerts: int = 0  # alerts posted
    repeats: int = 0  # of which in the thread of their series' open alert
    digested: int = 0  # of which listed in a storm digest instead of alerted one by one
    muted: int = 0  # failures not alerted because they were muted
    post_failures: int = 0  # posts Slack refused (retried next cycle)
    pending: int = 0  # failures left for a later cycle
    undeliverable: int = 0  # alerts Slack refused for good: kept aside, retried later
    error: str | None = None


@dataclass
class CycleStats:
    kinds: dict[EventKind, KindStats] = field(default_factory=dict)
    skipped: bool = False  # another replica holds the lease
    forced: bool = False  # polled without the lease (a wake)
    error: str | None = None  # the cycle could not run at all (e.g. the store is down)
    reposted: int = 0  # alerts kept aside earlier that Slack took this time
    detail_reads: int = 0  # failed executions read for their alerts' failure details
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.kinds.values())

    @property
    def events_seen(self) -> int:
        return sum(s.events for s in self.kinds.values())

    @property
    def alerts_posted(self) -> int:
        return sum(s.alerts for s in self.kinds.values())

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.kinds.values())

    @property
    def healthy(self) -> bool:
        """False when the loop should back off: nothing could be polled, or Slack took nothing."""
        if self.error is not None:
            return False
        if self.kinds and all(s.error is not None for s in self.kinds.values()):
            return False
        refused = sum(s.post_failures for s in self.kinds.values())
        return not (refused and not self.alerts_posted)
