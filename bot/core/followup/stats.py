"""The follow-through's counters (logs, metrics, tests and the benchmark read them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FollowupStats:
    """Counters since start (for logs, metrics and the benchmark)."""

    polls: int = 0  # execution reads
    event_reads: int = 0  # event reads to re-render after a restart
    poll_errors: int = 0
    changes: int = 0  # status changes seen (terminal ones included)
    summary_updates: int = 0
    alert_updates: int = 0
    slack_failures: int = 0
    finished: int = 0
    gave_up: int = 0
    not_found: int = 0
    lag_seconds: float = 0.0  # how late the most overdue tracker was at the last round
