"""Repeated failures through the real surfaces: a `rerun` replied in a series' thread reruns its
newest failure (the latest commit), once, and never the first alert's older commit."""

from __future__ import annotations

from bot.core.routing import Router
from bot.core.watcher import WatchTiming
from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, Harness


async def test_a_rerun_reply_in_a_series_thread_reruns_the_newest_failure(harness: Harness) -> None:
    h = harness
    watcher = h.runtime.watcher(Router(fallback=ALERTS), timing=WatchTiming(30, 900), holder="test-watcher")
    first = h.sim.add_event("git", executionStatus="FAILED", pipeline="deploy-prod", targetBranch="main")
    await watcher.poll_once()
    newest = h.sim.add_event("git", executionStatus="FAILED", pipeline="deploy-prod", targetBranch="main")
    stats = await watcher.poll_once()
    assert stats.kinds["git"].repeats == 1
    root = await h.store.alerts.get("git", first["id"], first["executionIndex"])
    assert root is not None
    h.sim.reset_requests()
    await h.send.message_event(ALERTS, "U0ALICE", "rerun", thread_ts=root.ts)
    await wait_for(lambda: h.posts() == 1, timeout=10)
    [post] = [r for r in h.sim.requests if r.method == "POST" and "/codestream/api/git-events/" in r.path]
    assert newest["id"] in post.path and first["id"] not in post.path
    await watcher.stop()
