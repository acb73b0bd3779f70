"""Prometheus metrics (``GET /metrics``). One place defines every series; the code that does the
work calls the small helpers below, so names and labels stay consistent."""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import Counter, Gauge, Histogram

PREFIX: Final = "codestream_bot"

ACTIONS = Counter(f"{PREFIX}_actions_total", "Resume/rerun/show requests by result", ["action", "surface", "result"])
DEDUPE_HITS = Counter(f"{PREFIX}_dedupe_hits_total", "Requests answered as duplicates of an earlier one")
ACCESS_DENIALS = Counter(f"{PREFIX}_access_denials_total", "Requests denied by the access policy", ["action"])
CODESTREAM_REQUESTS = Counter(
    f"{PREFIX}_codestream_requests_total", "HTTP requests to Code Stream", ["operation", "status"]
)
CODESTREAM_LATENCY = Histogram(
    f"{PREFIX}_codestream_request_seconds",
    "Latency of Code Stream requests",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKEN_REFRESHES = Counter(f"{PREFIX}_token_refreshes_total", "Logins to Code Stream", ["auth"])
SLACK_CALLS = Counter(f"{PREFIX}_slack_api_calls_total", "Slack Web API calls", ["method", "outcome"])
SLACK_RATE_LIMIT_WAITS = Counter(f"{PREFIX}_slack_rate_limit_waits_total", "Waits after a Slack 429")
ALERTS_POSTED = Counter(f"{PREFIX}_alerts_posted_total", "Failure alerts posted", ["kind"])
ALERTS_MUTED = Counter(f"{PREFIX}_alerts_muted_total", "Failures not alerted because they were muted", ["kind"])
ALERTS_UNDELIVERABLE = Counter(
    f"{PREFIX}_alerts_undeliverable_total", "Alerts Slack refused for good (kept and retried)", ["channel", "reason"]
)
WATCHER_CYCLES = Counter(f"{PREFIX}_watcher_cycles_total", "Watcher polls", ["result"])
WATCHER_LAG = Gauge(f"{PREFIX}_watcher_lag_seconds", "Seconds since the watcher last completed a poll")
WATCHER_LAST_SUCCESS = Gauge(f"{PREFIX}_watcher_last_success_timestamp_seconds", "When the last poll completed")
ACTIVE_TRACKERS = Gauge(f"{PREFIX}_active_trackers", "Executions being followed")
ASYNCIO_TASKS = Gauge(f"{PREFIX}_asyncio_tasks", "Tasks in the bot's event loop (a leak grows it)")


def _tasks_now() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # read outside the event loop
        return 0.0


ASYNCIO_TASKS.set_function(_tasks_now)


def observe_codestream(operation: str, status: str, seconds: float) -> None:
    """The client's RequestObserver."""
    CODESTREAM_REQUESTS.labels(operation, status).inc()
    CODESTREAM_LATENCY.labels(operation).observe(seconds)


def record_outcome(action: str, surface: str, result: str) -> None:
    ACTIONS.labels(action, surface, result).inc()
    if result == "duplicate":
        DEDUPE_HITS.inc()
    elif result == "denied":
        ACCESS_DENIALS.labels(action).inc()
