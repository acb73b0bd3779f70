"""The watcher, approvals, the follow-through and the reconciler reach Code Stream on a connection
pool of their own: a hundred slow reruns in flight (every interaction connection busy) do not
delay the alert of a new failure."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.simulator import Fault
from bot.simulator.slack_api import wait_for
from tests.harness import harness_with_config

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

WATCHED = "C0WATCHED"
CONFIG = "routes:\n  - match: {project: Watched}\n    channel: C0WATCHED\n"
GIT_EVENTS = "/codestream/api/git-events/"
SLOW_POST = 60.0  # long enough for the 100 slash commands to reach Code Stream on a loaded machine


async def test_a_new_failure_is_alerted_within_seconds_while_100_slow_reruns_are_in_flight(tmp_path: Path) -> None:
    async with harness_with_config(
        tmp_path,
        CONFIG,
        BOT_WATCH_INTERVAL="1",
        BOT_WATCH_LOOKBACK="86400",
        BOT_DIGEST_THRESHOLD="0",
        CODESTREAM_TIMEOUT="60",  # the POSTs are slow, not timed out
        BOT_SHUTDOWN_GRACE="5",  # the slow POSTs are handed over, not waited for, at the end
    ) as h:
        h.slack.add_channel(WATCHED, "watched")
        # A hundred failures nobody routes (no alert), each rerun by someone: every POST takes 20 s.
        others = [h.sim.add_event("git", project="Other", executionStatus="FAILED")["id"] for _ in range(100)]
        h.sim.inject(Fault(method="POST", path="/codestream/api/git-events/", delay=SLOW_POST))
        await asyncio.gather(*(h.send.slash_command(f"rerun {event_id}", user="U0ALICE") for event_id in others))
        # All 100 on their way (on a loaded machine the slash commands take a while to get there).
        await wait_for(lambda: h.sim.count("POST", "/codestream/api/git-events/") == 100, timeout=SLOW_POST * 0.75)
        posts = [r.at for r in h.sim.requests if r.method == "POST" and r.path.startswith(GIT_EVENTS)]
        # No interaction connection is free before the first slow POST ends.
        first_free = min(posts) + SLOW_POST

        failed = h.sim.add_event("git", project="Watched", pipeline="watched-ci", executionStatus="FAILED")

        def alerted() -> bool:
            return any(failed["id"] in str(m.metadata) for m in h.slack.messages(WATCHED))

        await wait_for(alerted, timeout=SLOW_POST * 2)
        alerted_at = time.monotonic()
        # Before: the watcher's read waited for one of the reruns' connections, so the alert came
        # only after a POST ended. Now it does not wait for any: it comes while all are in flight.
        assert alerted_at < first_free, f"alerted {alerted_at - first_free:.1f} s after a connection was free"
        assert h.sim.count("POST", "/codestream/api/git-events/") == 100
