"""A bot process killed while it holds the claim of a cancel or an approval decision, before it
sent anything to Code Stream (it was reading the execution or the approval back under the
claim). Real processes, SIGKILL, a restart on the same SQLite file: the next request for the
same execution or approval must work at once — not be told "already in hand" for the ten
minutes it takes an orphaned claim to expire."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.simulator import CodeStreamSimulator, Fault
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.render.approval import ACTION_APPROVE
from bot.store import open_store
from tests.harness import ALERTS, BOT_TOKEN, buttons
from tests.replicas import Replica, finish, ready, replica_env, start_replica

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

APPROVALS = "C0APPROVALS"
EXECUTIONS = "/codestream/api/executions/"
OPERATIONS = "/codestream/api/user-operations/"
CONFIG = (
    "routes:\n"
    "  - match: {kind: approval}\n    channel: C0APPROVALS\n"
    "access:\n  rules:\n"
    "    - users: [U0ALICE]\n      actions: [show, rerun, resume, cancel, pause, approve]\n"
)


@dataclass
class World:
    sim: CodeStreamSimulator
    slack: SlackStandIn
    env: dict[str, str]
    tmp_path: Path

    async def start(self, name: str) -> Replica:
        return await ready(await start_replica(name, self.env, self.tmp_path), self.slack)

    def gets(self, path: str) -> int:
        return self.sim.count("GET", path)

    def posts(self, path: str) -> int:
        return self.sim.count("POST", path)


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    config = tmp_path / "bot.yaml"
    config.write_text(CONFIG)
    async with (
        CodeStreamSimulator(execution_duration=600.0) as sim,
        SlackStandIn(bot_token=BOT_TOKEN) as slack,
    ):
        slack.add_channel(APPROVALS, "cs-approvals")
        env = replica_env(
            sim,
            slack,
            tmp_path,
            BOT_CONFIG=str(config),
            BOT_ALERT_CHANNEL=ALERTS,
            BOT_APPROVALS_INTERVAL="1",
            BOT_WATCH_INTERVAL="10",
            BOT_FOLLOW_LEASE_SECONDS="30",
            CODESTREAM_TIMEOUT="60",
        )
        yield World(sim, slack, env, tmp_path)


async def killed_while_reading_under_the_claim(
    w: World, first: Replica, path: str, send: Callable[[Replica], Any], reads_before_claim: int
) -> None:
    """Make the bot's read under the claim hang, send the request, SIGKILL the bot while that
    read is on its way."""
    try:
        before = w.gets(path)
        # The read(s) before the claim go through; the one under the claim never answers.
        w.sim.inject(Fault(method="GET", path=path, delay=120, skip=reads_before_claim, times=1))
        await send(first)
        await wait_for(lambda: w.gets(path) >= before + reads_before_claim + 1, timeout=15)
        await first.kill()
    finally:
        await finish(first)
    w.sim.clear_faults()


async def test_a_cancel_killed_under_its_claim_does_not_block_the_next_cancel(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        execution = w.sim.add_execution(pipeline="deploy-api", project="Payments", index=14)
        path = f"{EXECUTIONS}{execution['id']}"

        async def cancel(bot: Replica) -> None:
            assert bot.send is not None
            await bot.send.slash_command(f"cancel {execution['id']}", user="U0ALICE", channel=ALERTS)

        await killed_while_reading_under_the_claim(w, await w.start("first"), path, cancel, reads_before_claim=1)
        assert w.posts(path) == 0  # the dead process sent nothing

        second = await w.start("second")
        # From the moment the new process answers (its start-up alone is slow on a busy machine):
        # it frees the dead process's claim before it takes any work.
        restarted = time.monotonic()
        try:
            seen_responses, seen_messages = len(w.slack.responses), len(w.slack.messages(ALERTS))
            await cancel(second)
            await wait_for(lambda: w.posts(path) == 1, timeout=15)
            took = time.monotonic() - restarted
            said = await wait_for(
                lambda: [m for m in w.slack.messages(ALERTS)[seen_messages:] if "canceled" in m.text], timeout=15
            )
            assert "<@U0ALICE> canceled" in said[0].text + json.dumps(said[0].blocks)
            answers = json.dumps([a.body for a in w.slack.responses[seen_responses:]])
            assert "Already in hand" not in answers and "in progress" not in answers
            assert took < 15, f"the next cancel waited {took:.1f} s for a dead process's claim"
        finally:
            await finish(second)
        assert w.sim.get_execution(execution["id"])["status"] in ("CANCELED", "CANCELING")
        store = await open_store(w.env["BOT_DATABASE_URL"])
        try:
            rows = [r for r in await store.actions.list() if r.kind == "execution"]
        finally:
            await store.close()
        # The dead process's intent is in the audit trail, closed as not sent; the new one done.
        assert sorted(r.status for r in rows) == ["done", "not_started"], rows
        assert all(r.finished_at is not None for r in rows)


async def test_an_approval_killed_under_its_claim_does_not_block_the_next_decision(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        first = await w.start("first")
        op = w.sim.user_operations.add(approvers=["alice@example.com"])
        path = f"{OPERATIONS}{op['id']}"

        def request() -> Message | None:
            for m in w.slack.messages(APPROVALS):
                if m.user == "U0BOT" and op["id"] in json.dumps(m.blocks) and ACTION_APPROVE in buttons(m):
                    return m
            return None

        posted = await wait_for(request, timeout=15)

        async def approve(bot: Replica) -> None:
            assert bot.send is not None
            seen = len(w.slack.views)
            value = buttons(posted)[ACTION_APPROVE]["value"]
            await bot.send.block_action(ACTION_APPROVE, value, user="U0ALICE", channel=APPROVALS, message_ts=posted.ts)
            await wait_for(lambda: len(w.slack.views) > seen, timeout=10)
            view = dict(w.slack.views[-1]["view"])
            values = {"approval_message": {"response_message": {"type": "plain_text_input", "value": "ship it"}}}
            resp = await bot.send.view_submission(view, "U0ALICE", values=values)
            assert resp.status_code == 200

        # Reads before the claim: the button's check and the submission's own read.
        await killed_while_reading_under_the_claim(w, first, path, approve, reads_before_claim=2)
        assert w.posts(path) == 0

        second = await w.start("second")
        restarted = time.monotonic()  # from the moment the new process answers, as above
        try:
            await approve(second)
            await wait_for(lambda: w.posts(path) == 1, timeout=15)
            took = time.monotonic() - restarted
            assert took < 15, f"the next decision waited {took:.1f} s for a dead process's claim"
            assert w.sim.user_operations.get(op["id"])["status"] == "APPROVED"
        finally:
            await finish(second)
