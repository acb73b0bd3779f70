"""Code Stream approvals in Slack, through the real surfaces: the approvals watcher posts one
request per pending user operation where routing sends kind `approval`; a decision made in
vRA, an expiry or a cancellation redraws it at the next poll, without buttons."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.approvals.watcher import ApprovalWatcher
from bot.core.routing import Router
from bot.simulator.slack_api import Message
from bot.slack.render.approval import ACTION_APPROVE, ACTION_REJECT
from tests.harness import ALERTS, Harness, harness_with_config

APPROVALS = "C0APPROVALS"


def everything(message: Message) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e
        for b in message.blocks if b.get("type") == "actions"
        for e in b["elements"] if e.get("type") == "button"
    }  # fmt: skip


def requests_in(h: Harness, channel: str = APPROVALS) -> list[Message]:
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT" and "Approval" in m.text]


def watcher_of(h: Harness) -> ApprovalWatcher:
    router = Router.from_config(h.runtime.file_config, ALERTS)
    return h.runtime.approval_watcher(router, holder="test-approvals")


@pytest.fixture
async def routed(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "routes:\n"
        "  - match: {kind: approval}\n    channel: C0APPROVALS\n"
        "access:\n  rules:\n"
        "    - users: [U0ALICE, U0BOB]\n      actions: [show, rerun, resume, approve]\n"
    )
    # The bot's own approvals watcher stays off: the tests poll when they choose.
    async with harness_with_config(tmp_path, config, BOT_APPROVALS="false") as h:
        h.slack.add_channel(APPROVALS, "cs-approvals")
        yield h


async def test_a_pending_approval_is_posted_once_with_its_facts_and_buttons(routed: Harness) -> None:
    h = routed
    op = h.sim.user_operations.add(
        pipelineName="payments-deploy", executionIndex=12, summary="Deploy 1.4.2 to production",
        description="Change window: today 14:00-16:00", requestedBy="fritz",
        approvers=["alice@example.com", "carol@example.com"], approverGroups=["release-managers"],
    )  # fmt: skip
    watcher = watcher_of(h)
    stats = await watcher.poll_once(force=True)
    assert (stats.listed, stats.posted) == (1, 1)
    [request] = requests_in(h)
    shown = everything(request)
    for fact in ("payments-deploy #12", "Deploy 1.4.2 to production", "Change window", "fritz",
                 "alice@example.com, carol@example.com", "release-managers", "Expires", "!date^"):  # fmt: skip
        assert fact in shown, fact
    assert f"/codestream/#/executions/{op['executionId']}" in shown
    assert set(buttons(request)) == {ACTION_APPROVE, ACTION_REJECT}
    # Exactly once: another poll, and another replica's watcher, post nothing more.
    other = h.runtime.approval_watcher(Router.from_config(h.runtime.file_config, ALERTS), holder="other")
    await asyncio.gather(watcher.poll_once(force=True), other.poll_once(force=True))
    assert len(requests_in(h)) == 1
    assert requests_in(h, ALERTS) == []  # routing picked the approvals channel


async def test_decided_in_vra_expired_or_canceled_is_redrawn_at_the_next_poll(routed: Harness) -> None:
    h = routed
    decided = h.sim.user_operations.add(pipelineName="decided-deploy")
    expiring = h.sim.user_operations.add(pipelineName="expiring-deploy")
    canceled = h.sim.user_operations.add(pipelineName="canceled-deploy")
    watcher = watcher_of(h)
    assert (await watcher.poll_once(force=True)).posted == 3
    h.sim.user_operations.decide(str(decided["id"]), "Approved", responder="fritz", message="ship it")  # lenient
    h.sim.user_operations.decide(str(canceled["id"]), "CANCELED")
    h.sim.user_operations.ops[str(expiring["id"])]["_expiresOnInMicros"] = 0  # its expiry has passed
    assert (await watcher.poll_once(force=True)).ended == 3
    by_pipeline = {p: m for m in requests_in(h) for p in ("decided", "expiring", "canceled") if p in m.text}
    assert "✅ *Approved* by fritz in Code Stream: ship it" in everything(by_pipeline["decided"])
    assert "⌛ *Expired*" in everything(by_pipeline["expiring"])
    assert "⛔" in everything(by_pipeline["canceled"]) and "Canceled" in everything(by_pipeline["canceled"])
    assert all(not buttons(m) for m in by_pipeline.values())
    assert (await watcher.poll_once(force=True)).ended == 0  # redrawn once
    assert len({m.ts for m in requests_in(h)}) == 3
