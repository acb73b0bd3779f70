"""A bot process that dies between Code Stream's POST and recording its outcome: real processes,
SIGKILL and SIGTERM past a short grace, then a restart on the same SQLite file. The restarted
bot must start at once (not wait out the dead process's leases), and finish what the dead one
left: read the event back, say what happened, resolve the alert, follow the run — never POST
again."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.messages import METADATA_EVENT_TYPE
from bot.store import open_store
from tests.harness import ALERTS, BOT_TOKEN
from tests.replicas import Replica, finish, ready, replica_env, start_replica

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

POST_PATH = "/codestream/api/git-events/"


@dataclass
class World:
    sim: CodeStreamSimulator
    slack: SlackStandIn
    env: dict[str, str]
    tmp_path: Path

    async def start(self, name: str) -> Replica:
        return await ready(await start_replica(name, self.env, self.tmp_path), self.slack)

    def alert(self) -> Message | None:
        for message in self.slack.messages(ALERTS):
            meta = message.metadata or {}
            if (
                message.user == "U0BOT"
                and not message.thread_ts
                and meta.get("event_type") == METADATA_EVENT_TYPE
                and meta["event_payload"]["id"] == SAMPLE_FAILED_GIT_ID
            ):
                return message
        return None

    def thread(self, alert: Message) -> list[Message]:
        return [m for m in self.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"]


@asynccontextmanager
async def world(tmp_path: Path, **env: str) -> AsyncIterator[World]:
    async with CodeStreamSimulator(execution_duration=1.0) as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        shared = replica_env(
            sim,
            slack,
            tmp_path,
            BOT_ALERT_CHANNEL=ALERTS,
            # A long watcher interval: the dead process's lease would block a restart for 30 s.
            BOT_WATCH_INTERVAL="10",
            BOT_WATCH_LOOKBACK="86400",
            BOT_FOLLOW_LEASE_SECONDS="30",
            CODESTREAM_TIMEOUT="60",
            **env,
        )
        yield World(sim, slack, shared, tmp_path)


def rerun_value(alert: Message) -> str:
    for block in alert.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == ACTION_RERUN:
                return str(element["value"])
    raise AssertionError("no Rerun button")


@pytest.mark.parametrize("how", ["sigkill", "sigterm-short-grace"])
async def test_a_restarted_bot_finishes_what_a_dead_one_left_and_never_posts_again(tmp_path: Path, how: str) -> None:
    async with world(tmp_path, BOT_SHUTDOWN_GRACE="0.5") as w:
        first = await w.start("first")
        try:
            alert = await wait_for(w.alert, timeout=30)
            before = w.sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"]
            # Code Stream runs the rerun at once; its answer never comes back.
            w.sim.inject(Fault(method="POST", path=POST_PATH, delay=120, apply_after=0.0, times=1))
            assert first.send is not None
            await first.send.block_action(
                ACTION_RERUN, rerun_value(alert), user="U0ALICE", channel=ALERTS, message_ts=alert.ts
            )
            await wait_for(lambda: w.sim.count("POST", POST_PATH) == 1, timeout=15)
            await wait_for(lambda: "requested by" in json.dumps((w.slack.message(ALERTS, alert.ts) or alert).blocks))
            if how == "sigkill":
                await first.kill()
            else:
                first.proc.send_signal(signal.SIGTERM)
                await first.proc.wait()
        finally:
            await finish(first)
        assert w.thread(alert) == []  # the dead process said nothing about the outcome

        restarted = time.monotonic()
        second = await w.start("second")
        try:
            took = time.monotonic() - restarted
            [summary] = await wait_for(lambda: w.thread(alert), timeout=30)
            assert "Rerun started" in summary.text + json.dumps(summary.blocks)
            assert f"#{before + 1}" in summary.text + json.dumps(summary.blocks)
            # The follow-through carries on from the new process, to the end.
            await wait_for(
                lambda: "Fixed by" in json.dumps((w.slack.message(ALERTS, alert.ts) or alert).blocks), timeout=30
            )
            assert w.sim.count("POST", POST_PATH) == 1
            # The dead process's leases last 30 s: a start that waited for one cannot pass, while a
            # start that is merely slow (imports on a loaded machine took 21 s once) does.
            assert took < 27, f"the restart waited {took:.1f} s for a dead process's lease"
        finally:
            await finish(second)
        store = await open_store(w.env["BOT_DATABASE_URL"])
        try:
            [row] = await store.actions.list()
        finally:
            await store.close()
        assert row.status == "started" and row.execution_id is not None and row.finished_at is not None
        log = (tmp_path / "second.log").read_text()
        assert "taking over an action a stopped replica left open" in log


async def test_sigterm_with_slow_work_queued_exits_within_its_grace_and_loses_nothing(tmp_path: Path) -> None:
    """Found by review: 150 acked reruns with 12 s POSTs kept the process alive for 50 s after
    SIGTERM, past the pod's termination grace (30 s), so Kubernetes killed it. The exit must fit
    BOT_SHUTDOWN_GRACE plus a few seconds of hand-over: what has not finished is left for the
    reconciler, and a restarted bot settles each one, never posting twice."""
    grace = 2.0
    async with world(tmp_path, BOT_SHUTDOWN_GRACE=str(grace), BOT_DIGEST_THRESHOLD="0") as w:
        events = [w.sim.add_event("git", project="Quiet", executionStatus="FAILED")["id"] for _ in range(30)]
        first = await w.start("first")
        try:
            # Answers far slower than the bound below (an exit that waited for one cannot pass);
            # Code Stream runs each rerun at once, so the restarted bot settles them by reading back.
            w.sim.inject(Fault(method="POST", path=POST_PATH, delay=40.0, apply_after=0.5))
            assert first.send is not None
            for event_id in events:
                await first.send.slash_command(f"rerun {event_id}", user="U0ALICE")
            await wait_for(lambda: w.sim.count("POST", POST_PATH) >= 20, timeout=20)
            asked = time.monotonic()
            first.proc.send_signal(signal.SIGTERM)
            await first.proc.wait()
            took = time.monotonic() - asked
        finally:
            await finish(first)
        # The grace, the hand-over, and a slow machine's process exit; never a POST's 40 s.
        assert took < grace + 20, f"exited {took:.1f} s after SIGTERM (grace {grace:g} s)"
        posted = w.sim.count("POST", POST_PATH)
        w.sim.clear_faults()
        second = await w.start("second")
        try:

            async def settled() -> bool:
                store = await open_store(w.env["BOT_DATABASE_URL"])
                try:
                    rows = [r for r in await store.actions.list() if r.action == "rerun"]
                finally:
                    await store.close()
                return len(rows) == len(events) and all(r.finished_at is not None for r in rows)

            deadline = time.monotonic() + 60
            while not await settled():
                assert time.monotonic() < deadline, "not every rerun was settled after the restart"
                await asyncio.sleep(0.2)
        finally:
            await finish(second)
        assert w.sim.count("POST", POST_PATH) == posted  # nothing was sent twice
