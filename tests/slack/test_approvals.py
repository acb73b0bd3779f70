"""Code Stream approvals in Slack, through the real surfaces: the approvals watcher posts one
request per pending user operation where routing sends kind `approval`; a decision made in
vRA, an expiry or a cancellation redraws it at the next poll, without buttons."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.core.approvals.watcher import ApprovalWatcher
from bot.core.routing import Router
from bot.simulator import Fault
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.approval import ACTION_APPROVE, ACTION_REJECT
from bot.store import ApprovalRecord
from tests.harness import ALERTS, Harness, buttons, everything, harness_with_config

APPROVALS = "C0APPROVALS"


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
        pipelineName="payments-deploy",
        executionIndex=12,
        summary="Deploy 1.4.2 to production",
        description="Change window: today 14:00-16:00",
        requestedBy="fritz",
        approvers=["alice@example.com", "carol@example.com"],
        approverGroups=["release-managers"],
    )
    watcher = watcher_of(h)
    stats = await watcher.poll_once(force=True)
    assert (stats.listed, stats.posted) == (1, 1)
    [request] = requests_in(h)
    shown = everything(request)
    for fact in (
        "payments-deploy #12",
        "Deploy 1.4.2 to production",
        "Change window",
        "fritz",
        "alice@example.com, carol@example.com",
        "release-managers",
        "Expires",
        "!date^",
    ):
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


# --- deciding from Slack ---------------------------------------------------------------------------


def decision_posts(h: Harness) -> list[Any]:
    return [r.json() for r in h.sim.requests if r.method == "POST" and "/user-operations/" in r.path]


async def posted_request(h: Harness, **fields: Any) -> tuple[Message, dict[str, Any]]:
    op = h.sim.user_operations.add(**fields)
    await watcher_of(h).poll_once(force=True)
    [request] = [m for m in requests_in(h) if str(op["id"]) in json.dumps(m.blocks)]
    return request, op


async def press(h: Harness, request: Message, action_id: str, user: str = "U0ALICE") -> None:
    value = buttons(request)[action_id]["value"]
    resp = await h.send.block_action(action_id, value, user=user, channel=APPROVALS, message_ts=request.ts)
    assert resp.status_code == 200


async def submit(h: Harness, view: dict[str, Any], message: str, user: str = "U0ALICE") -> None:
    values = {"approval_message": {"response_message": {"type": "plain_text_input", "value": message}}}
    resp = await h.send.view_submission(view, user, values=values)
    assert resp.status_code == 200


async def modal(h: Harness, seen: int = 0) -> dict[str, Any]:
    await wait_for(lambda: len(h.slack.views) > seen, timeout=10)
    return dict(h.slack.views[-1]["view"])


async def shows(h: Harness, request: Message, *words: str) -> Message:
    def probe() -> Message | None:
        current = h.slack.message(APPROVALS, request.ts)
        return current if current is not None and all(w in everything(current) for w in words) else None

    return await wait_for(probe, timeout=10)


async def test_a_listed_approver_approves_with_a_message_and_the_request_says_so(routed: Harness) -> None:
    h = routed
    request, op = await posted_request(h, approvers=["alice@example.com"])
    await press(h, request, ACTION_APPROVE)
    view = await modal(h)
    assert "Approve" in json.dumps(view) and view["callback_id"] == "codestream_approval_decision"
    await submit(h, view, "looks good")
    updated = await shows(h, request, "✅ *Approved* by <@U0ALICE>: looks good")
    assert not buttons(updated)
    assert decision_posts(h) == [{"status": "APPROVED", "responseMessage": "looks good"}]
    assert h.sim.user_operations.get(str(op["id"]))["status"] == "APPROVED"
    [row] = [r for r in await h.store.actions.list() if r.kind == "approval"]
    assert (row.action, row.status, row.actor_id, row.event_id) == ("approve", "done", "U0ALICE", op["id"])
    # The next poll leaves it alone: redrawn once.
    assert (await watcher_of(h).poll_once(force=True)).ended == 0


async def test_someone_the_approval_does_not_list_is_refused_before_the_form(routed: Harness) -> None:
    h = routed
    request, _ = await posted_request(h, approvers=["alice@example.com"])
    await press(h, request, ACTION_REJECT, user="U0BOB")
    await wait_for(lambda: h.slack.ephemerals_for("U0BOB"), timeout=10)
    said = json.dumps([e.blocks for e in h.slack.ephemerals_for("U0BOB")])
    assert "for alice@example.com" in said and "bob@example.com" in said and "not among them" in said, said
    assert h.slack.views == [] and decision_posts(h) == []
    assert set(buttons(h.slack.message(APPROVALS, request.ts) or request)) == {ACTION_APPROVE, ACTION_REJECT}
    [row] = [r for r in await h.store.actions.list() if r.kind == "approval"]
    assert (row.action, row.status, row.actor_id) == ("reject", "denied", "U0BOB")


async def test_decided_in_vra_while_the_form_was_open_sends_nothing(routed: Harness) -> None:
    h = routed
    request, op = await posted_request(h, approvers=["alice@example.com"])
    await press(h, request, ACTION_APPROVE)
    view = await modal(h)
    h.sim.user_operations.decide(str(op["id"]), "REJECTED", responder="fritz", message="not today")
    await submit(h, view, "go")
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    assert "already rejected" in json.dumps([e.blocks for e in h.slack.ephemerals_for("U0ALICE")])
    await shows(h, request, "❌ *Rejected* by fritz in Code Stream: not today")
    assert decision_posts(h) == []


async def test_an_expired_approval_is_not_sent_and_shows_expired(routed: Harness) -> None:
    h = routed
    request, op = await posted_request(h, approvers=["alice@example.com"])
    await press(h, request, ACTION_APPROVE)
    view = await modal(h)
    h.sim.user_operations.ops[str(op["id"])]["_expiresOnInMicros"] = 0  # it expires meanwhile
    await submit(h, view, "")
    await shows(h, request, "⌛ *Expired*")
    assert decision_posts(h) == []


async def test_code_streams_403_is_shown_as_such_and_the_buttons_stay(routed: Harness) -> None:
    h = routed
    request, op = await posted_request(h, approvers=["alice@example.com"])
    h.sim.user_operations.forbidden.add(str(op["id"]))
    await press(h, request, ACTION_APPROVE)
    await submit(h, await modal(h), "ok")
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    said = json.dumps([e.blocks for e in h.slack.ephemerals_for("U0ALICE")])
    assert "Code Stream refused" in said and "unauthorized" in said, said
    assert buttons(h.slack.message(APPROVALS, request.ts) or request)
    [row] = [r for r in await h.store.actions.list() if r.kind == "approval"]
    assert (row.status, row.error_class) == ("failed", "Forbidden")


async def test_two_submissions_at_once_post_one_decision(routed: Harness) -> None:
    h = routed
    request, _ = await posted_request(h, approvers=["alice@example.com", "bob@example.com"])
    await press(h, request, ACTION_APPROVE)
    first = await modal(h)
    await press(h, request, ACTION_REJECT, user="U0BOB")
    second = await modal(h, seen=1)
    await asyncio.gather(submit(h, first, "yes"), submit(h, second, "no", user="U0BOB"))
    await wait_for(lambda: h.slack.ephemerals, timeout=10)
    await shows(h, request, "by <@U0")  # the winner's decision, in place
    assert len(decision_posts(h)) == 1
    statuses = sorted(r.status for r in await h.store.actions.list() if r.kind == "approval")
    assert statuses in (["done", "duplicate"], ["done", "ended"])


@pytest.fixture
async def no_approve_action(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "routes:\n  - match: {kind: approval}\n    channel: C0APPROVALS\n"
        "access:\n  rules:\n    - users: [U0ALICE]\n"  # the verbs, but not approve: it must be named
    )
    async with harness_with_config(tmp_path, config, BOT_APPROVALS="false") as h:
        h.slack.add_channel(APPROVALS, "cs-approvals")
        yield h


async def test_the_policy_must_grant_approve(no_approve_action: Harness) -> None:
    h = no_approve_action
    request, _ = await posted_request(h, approvers=["alice@example.com"])
    await press(h, request, ACTION_APPROVE)
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    assert "may not decide" in json.dumps([e.blocks for e in h.slack.ephemerals_for("U0ALICE")])
    assert h.slack.views == [] and decision_posts(h) == []


@pytest.fixture
async def quick_reconcile(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "routes:\n  - match: {kind: approval}\n    channel: C0APPROVALS\n"
        "access:\n  rules:\n    - users: [U0ALICE]\n      actions: [show, approve]\n"
    )
    # The read-back deadline is far beyond when the decision takes effect (3 s), so the
    # reconciler settles it as done however slow the machine.
    async with harness_with_config(tmp_path, config, BOT_APPROVALS="false", BOT_RECONCILE_SECONDS="30") as h:
        h.slack.add_channel(APPROVALS, "cs-approvals")
        yield h


async def test_an_ambiguous_answer_is_settled_by_reading_the_approval_back(quick_reconcile: Harness) -> None:
    h = quick_reconcile
    request, _ = await posted_request(h, approvers=["alice@example.com"])
    # A 504 from the proxy; Code Stream applies the decision 3 s later: after the client's own
    # short read-back has ended even on a loaded machine (at 1 s it once saw it applied: "done"),
    # so the answer is "not known yet" and the reconciler settles it.
    h.sim.inject(Fault(method="POST", path="/user-operations/", status=504, apply_after=3.0, times=1))
    await press(h, request, ACTION_APPROVE)
    await submit(h, await modal(h), "ship it")
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    assert "outcome not known yet" in json.dumps([e.blocks for e in h.slack.ephemerals_for("U0ALICE")])
    await shows(h, request, "✅ *Approved* by <@U0ALICE>: ship it")
    assert len(decision_posts(h)) == 1
    [row] = [r for r in await h.store.actions.list() if r.kind == "approval"]
    assert row.status == "done"


async def test_a_member_of_a_mapped_approver_group_may_decide(tmp_path: Path) -> None:
    config = (
        "routes:\n  - match: {kind: approval}\n    channel: C0APPROVALS\n"
        "approver_groups:\n  release-managers: S0RELEASE\n"
        "access:\n  rules:\n    - users: [U0CAROL]\n      actions: [show, approve]\n"
    )
    async with harness_with_config(tmp_path, config, BOT_APPROVALS="false") as h:
        h.slack.add_channel(APPROVALS, "cs-approvals")
        h.slack.add_usergroup("S0RELEASE", "release-managers", ["U0CAROL"])
        request, _ = await posted_request(h, approvers=[], approverGroups=["release-managers"])
        await press(h, request, ACTION_REJECT, user="U0CAROL")
        await submit(h, await modal(h), "", user="U0CAROL")
        updated = await shows(h, request, "❌ *Rejected* by <@U0CAROL>")
        assert not buttons(updated)
        assert decision_posts(h) == [{"status": "REJECTED", "responseMessage": ""}]


async def test_a_request_left_unposted_by_a_crash_is_posted_by_a_later_poll(routed: Harness) -> None:
    """Found by review: the row is written before the post; a crash (or an exception) in between
    left it unposted for good — never posted, never redrawn."""
    h = routed
    op = h.sim.user_operations.add(pipelineName="payments-deploy", summary="Deploy 1.4.3", approvers=["a@x.io"])
    long_ago = h.store.now() - timedelta(hours=1)
    await h.store.approvals.add(ApprovalRecord(operation_id=str(op["id"]), created_at=long_ago))  # as the crash left it
    stats = await watcher_of(h).poll_once(force=True)
    assert stats.posted == 1 and len(requests_in(h)) == 1
    record = await h.store.approvals.get(str(op["id"]))
    assert record is not None and record.ts is not None
    # A row a poster is at right now (not stale) is left to it: nothing posted twice.
    fresh = h.sim.user_operations.add(pipelineName="payments-deploy", summary="Deploy 1.4.4", approvers=["a@x.io"])
    await h.store.approvals.add(ApprovalRecord(operation_id=str(fresh["id"]), created_at=h.store.now()))
    assert (await watcher_of(h).poll_once(force=True)).posted == 0


async def test_approvals_pending_since_long_before_the_bot_watched_are_not_posted(routed: Harness) -> None:
    """Found by review: an upgrade (approvals on by default) posted every pending request, weeks
    old included. Like failures on a first start, only those within the lookback are posted."""
    h = routed
    weeks_ago = int((time.time() - 21 * 86_400) * 1_000_000)
    h.sim.user_operations.add(summary="Deploy 0.9 (forgotten)", _requestedOnInMicros=weeks_ago, approvers=["a@x.io"])
    h.sim.user_operations.add(summary="Deploy 1.5", approvers=["a@x.io"])
    router = Router.from_config(h.runtime.file_config, ALERTS)
    stats = await h.runtime.approval_watcher(router, holder="test-approvals", lookback=900).poll_once(force=True)
    assert (stats.posted, stats.old) == (1, 1)
    [request] = requests_in(h)
    assert "Deploy 1.5" in everything(request)


async def test_pending_approvals_beyond_the_first_page_are_posted_too(routed: Harness) -> None:
    """Found by review: one page was read, so the older pending approvals were never posted."""
    h = routed
    for n in range(5):
        h.sim.user_operations.add(summary=f"Deploy 2.{n}", approvers=["a@x.io"])
    router = Router.from_config(h.runtime.file_config, ALERTS)
    stats = await h.runtime.approval_watcher(router, holder="test-approvals", page_size=2).poll_once(force=True)
    assert (stats.listed, stats.posted) == (5, 5)
    lists = [r for r in h.sim.requests if r.method == "GET" and r.path.endswith("/user-operations")]
    assert [r.query.get("$skip") for r in lists] == ["0", "2", "4"]


@pytest.mark.parametrize("op_id", ["1f2e3d4c5b6a7988", "42", "op_2026-12-07.1"])
async def test_an_approval_whose_id_is_not_a_uuid_is_decided_from_its_buttons(routed: Harness, op_id: str) -> None:
    """Ids Code Stream gives the bot are its own: the button drawn for one is read back by the
    same rule (a safe URL path segment), whatever its shape."""
    h = routed
    request, _ = await posted_request(h, id=op_id, approvers=["alice@example.com"])
    await press(h, request, ACTION_APPROVE)
    await submit(h, await modal(h), "ok")
    await shows(h, request, "✅ *Approved* by <@U0ALICE>")
    assert [r.path for r in h.sim.requests if r.method == "POST" and "/user-operations/" in r.path] == [
        f"/codestream/api/user-operations/{op_id}"
    ]
    assert h.slack.ephemerals_for("U0ALICE") == []  # no "That button is not one of mine"


async def test_a_decision_code_stream_ignores_is_said_plainly_and_audited_as_failed(routed: Harness) -> None:
    """Code Stream answers 200 to a response from an account that may not decide, and keeps the
    approval open ("User operation response received from unauthorized user fritz. Ignoring the
    response."): what it did is read back, not assumed from the request."""
    h = routed
    request, op = await posted_request(h, approvers=["alice@example.com"])
    h.sim.user_operations.ignored.add(str(op["id"]))
    await press(h, request, ACTION_APPROVE)
    await submit(h, await modal(h), "ship it")
    said = await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    text = everything(said[-1])
    assert "Code Stream kept the request open" in text and "is not among its approvers" in text
    assert "decide in Code Stream" in text
    assert h.sim.user_operations.get(str(op["id"]))["status"] == "ACTIVE"
    assert len(decision_posts(h)) == 1
    current = h.slack.message(APPROVALS, request.ts)
    assert current is not None and "Approved" not in everything(current) and buttons(current)  # still open
    [row] = [r for r in await h.store.actions.list() if r.kind == "approval"]
    assert (row.status, row.error_class) == ("failed", "DecisionIgnored")
