"""Cancel, pause and resume a running execution from Slack, through signed HTTP: the summary's
buttons (behind confirm dialogs) and the slash command; the access actions `cancel` and
`pause`; exactly one POST per intent; ambiguous answers settled by reading the execution back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.verbs import CONTROLS
from bot.simulator import SAMPLE_FAILED_GIT_ID, Fault
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from tests.harness import ALERTS, Harness, buttons, everything, harness_with_config, running_harness

CANCEL = CONTROLS["cancel"].button_action_id
PAUSE = CONTROLS["pause"].button_action_id
RESUME = CONTROLS["resume-execution"].button_action_id
EXECUTIONS = "/codestream/api/executions/"


def control_posts(h: Harness) -> list[tuple[str, Any]]:
    """The execution actions Code Stream received: (action, body)."""
    return [
        (r.query.get("action", ""), r.json())
        for r in h.sim.requests
        if r.method == "POST" and r.path.startswith(EXECUTIONS)
    ]


async def rerun_and_summary(h: Harness) -> tuple[Message, Message, str]:
    """A rerun from an alert, its execution still running: (alert, summary, execution id)."""
    h.sim.execution_duration = 120.0  # long enough to be canceled or paused
    alert = await h.post_alert("git", SAMPLE_FAILED_GIT_ID)
    value = buttons(alert)[ACTION_RERUN]["value"]
    await h.send.block_action(ACTION_RERUN, value, channel=ALERTS, message_ts=alert.ts)
    [summary] = await wait_for(
        lambda: [m for m in h.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"], timeout=10
    )
    event = await h.runtime.client.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert event.execution_id is not None
    return alert, summary, event.execution_id


async def click(h: Harness, summary: Message, action_id: str, user: str = "U0ALICE") -> None:
    current = h.slack.message(ALERTS, summary.ts)
    assert current is not None
    resp = await h.send.block_action(
        action_id, buttons(current)[action_id]["value"], user=user, channel=ALERTS, message_ts=summary.ts
    )
    assert resp.status_code == 200


async def summary_shows(h: Harness, summary: Message, *words: str) -> Message:
    def probe() -> Message | None:
        current = h.slack.message(ALERTS, summary.ts)
        return current if current is not None and all(w in everything(current) for w in words) else None

    return await wait_for(probe, timeout=15)


async def test_cancel_from_the_summary_asks_first_posts_once_and_updates_the_summary(harness: Harness) -> None:
    h = harness
    alert, summary, execution_id = await rerun_and_summary(h)
    shown = buttons(summary)
    assert {CANCEL, PAUSE} <= set(shown) and RESUME not in shown
    dialog = json.dumps(shown[CANCEL]["confirm"], ensure_ascii=False)
    assert "demo-pipeline" in dialog or "#" in dialog
    assert "may keep running" in dialog  # some task types are not told of a cancel
    await click(h, summary, CANCEL)
    said = await wait_for(lambda: [m for m in h.slack.thread(ALERTS, alert.ts)[2:] if "canceled" in m.text], timeout=10)
    assert "<@U0ALICE> canceled" in everything(said[0])
    assert control_posts(h) == [("cancel", {"reason": "Canceled from Slack by @alice"})]
    updated = await summary_shows(h, summary, "CANCELED", "Canceled from Slack by <@U0ALICE>")
    assert CANCEL not in buttons(updated) and PAUSE not in buttons(updated)
    execution = await h.runtime.client.get_execution(execution_id)
    assert execution.status == "CANCELED"
    [row] = [r for r in await h.store.actions.list() if r.action == "cancel"]
    assert (row.kind, row.event_id, row.status, row.actor_id) == ("execution", execution_id, "done", "U0ALICE")


async def test_pause_by_slash_command_then_resume_from_the_summary(harness: Harness) -> None:
    h = harness
    _, summary, execution_id = await rerun_and_summary(h)
    link = f"<https://vra.example.com/codestream/#/executions/{execution_id}>"
    seen = len(h.slack.messages(ALERTS))
    await h.send.slash_command(f"pause {link}")
    await wait_for(lambda: any("paused" in m.text for m in h.slack.messages(ALERTS)[seen:]), timeout=10)
    updated = await summary_shows(h, summary, "PAUSED", "Paused from Slack by <@U0ALICE>")
    assert RESUME in buttons(updated) and PAUSE not in buttons(updated)
    await click(h, updated, RESUME, user="U0BOB")
    await summary_shows(h, summary, "RUNNING", "Resumed from Slack by <@U0BOB>")
    assert [action for action, _ in control_posts(h)] == ["pause", "resume"]
    assert control_posts(h)[1][1] == {"reason": "Resumed from Slack by @bob"}


async def test_double_click_on_cancel_posts_once(harness: Harness) -> None:
    h = harness
    _, summary, _ = await rerun_and_summary(h)
    await asyncio.gather(click(h, summary, CANCEL, "U0ALICE"), click(h, summary, CANCEL, "U0BOB"))
    await wait_for(lambda: h.slack.ephemerals, timeout=10)
    await summary_shows(h, summary, "CANCELED")
    assert [action for action, _ in control_posts(h)] == ["cancel"]
    other = json.dumps([e.blocks for e in h.slack.ephemerals], ensure_ascii=False)
    # The loser learns who is acting, or (when the winner was already done) that it is over.
    assert "Already in hand" in other or "already ended (CANCEL" in other or "already CANCEL" in other, other
    statuses = sorted(r.status for r in await h.store.actions.list() if r.action == "cancel")
    assert statuses in (["done", "duplicate"], ["done", "failed"])


async def test_a_slack_retry_of_the_click_is_answered_once(harness: Harness) -> None:
    h = harness
    _, summary, _ = await rerun_and_summary(h)
    current = h.slack.message(ALERTS, summary.ts)
    assert current is not None
    value = buttons(current)[PAUSE]["value"]
    for retry in (0, 1):
        await h.send.block_action(PAUSE, value, channel=ALERTS, message_ts=summary.ts, retry=retry)
    await summary_shows(h, summary, "PAUSED")
    assert [action for action, _ in control_posts(h)] == ["pause"]


@pytest.fixture
async def bob_may_not_cancel(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show, rerun, resume, cancel, pause]\n"
        "    - users: [U0BOB]\n"  # no actions listed: the verbs, but cancel and pause must be named
    )
    async with harness_with_config(tmp_path, config) as h:
        yield h


async def test_someone_the_policy_does_not_let_cancel_is_refused_and_audited(bob_may_not_cancel: Harness) -> None:
    h = bob_may_not_cancel
    _, summary, execution_id = await rerun_and_summary(h)
    await click(h, summary, CANCEL, user="U0BOB")
    await wait_for(lambda: h.slack.ephemerals_for("U0BOB"), timeout=10)
    refusal = json.dumps([e.blocks for e in h.slack.ephemerals_for("U0BOB")], ensure_ascii=False)
    assert "Cancel denied" in refusal and "may cancel" in refusal, refusal
    assert control_posts(h) == []
    [row] = [r for r in await h.store.actions.list() if r.action == "cancel"]
    assert (row.status, row.actor_id, row.event_id) == ("denied", "U0BOB", execution_id)
    # The slash command is refused the same way; alice may.
    await h.send.slash_command(f"pause {execution_id}", user="U0BOB")
    await wait_for(lambda: len([r for r in h.slack.responses if "Pause denied" in json.dumps(r.body)]) == 1)
    # Someone no rule names learns nothing about the execution.
    await click(h, summary, CANCEL, user="U0CAROL")
    await wait_for(lambda: h.slack.ephemerals_for("U0CAROL"), timeout=10)
    private = json.dumps([e.blocks for e in h.slack.ephemerals_for("U0CAROL")], ensure_ascii=False)
    assert "does not let you cancel that here" in private and "demo-pipeline" not in private, private
    await click(h, summary, PAUSE, user="U0ALICE")
    await summary_shows(h, summary, "PAUSED")
    assert [action for action, _ in control_posts(h)] == ["pause"]


async def test_a_finished_execution_cannot_be_canceled_and_nothing_is_posted(harness: Harness) -> None:
    h = harness
    execution = h.sim.add_execution(pipeline="done-ci", status="COMPLETED")
    await h.send.slash_command(f"cancel {execution['id']}")
    await wait_for(lambda: any("already ended" in json.dumps(r.body) for r in h.slack.responses), timeout=10)
    assert control_posts(h) == []


async def test_bad_input_gets_a_specific_answer(harness: Harness) -> None:
    h = harness
    for text, expected in (
        ("cancel", "needs an execution id"),
        ("pause not-a-uuid", "is not a Code Stream execution id"),
        (f"cancel https://vra.example.com/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}", "link is to an event"),
    ):
        resp = await h.send.slash_command(text)  # usage errors are answered in the ack itself
        assert resp.json()["response_type"] == "ephemeral"
        assert expected in json.dumps(resp.json()), (text, resp.json())
    await h.send.slash_command("cancel 00000000-0000-4000-8000-000000000000")
    await wait_for(lambda: any("Code Stream has no" in json.dumps(r.body) for r in h.slack.responses), timeout=10)
    assert control_posts(h) == []


async def test_an_answer_lost_after_the_cancel_applied_is_read_back_as_done(harness: Harness) -> None:
    h = harness
    _, summary, _ = await rerun_and_summary(h)
    h.sim.inject(Fault(method="POST", path="/executions/", status=504, after_processing=True, times=1))
    await click(h, summary, CANCEL)
    await summary_shows(h, summary, "CANCELED", "Canceled from Slack by <@U0ALICE>")
    assert [action for action, _ in control_posts(h)] == ["cancel"]
    [row] = [r for r in await h.store.actions.list() if r.action == "cancel"]
    assert row.status == "done"


@pytest.fixture
async def quick_reconcile(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, BOT_RECONCILE_SECONDS="5") as h:
        yield h


async def test_an_unknown_outcome_is_settled_by_the_reconciler_without_a_second_post(
    quick_reconcile: Harness,
) -> None:
    h = quick_reconcile
    alert, summary, _ = await rerun_and_summary(h)
    # Code Stream answers 504 and applies the pause only later (a slow backend behind a proxy).
    h.sim.inject(Fault(method="POST", path="/executions/", status=504, apply_after=1.0, times=1))
    await click(h, summary, PAUSE)
    [answer] = await wait_for(
        lambda: [m for m in h.slack.thread(ALERTS, alert.ts)[2:] if "outcome not known yet" in everything(m)],
        timeout=10,
    )
    settled = await wait_for(
        lambda: (m := h.slack.message(ALERTS, answer.ts)) is not None and "paused" in m.text and m, timeout=15
    )
    assert "<@U0ALICE> paused" in everything(settled)
    await summary_shows(h, summary, "PAUSED", "Paused from Slack by <@U0ALICE>")
    assert [action for action, _ in control_posts(h)] == ["pause"]
    [row] = [r for r in await h.store.actions.list() if r.action == "pause"]
    assert row.status == "done"


async def test_an_unknown_outcome_that_never_applied_says_safe_to_try_again(quick_reconcile: Harness) -> None:
    h = quick_reconcile
    alert, summary, _ = await rerun_and_summary(h)
    h.sim.inject(Fault(method="POST", path="/executions/", status=504, times=1))  # never applied
    await click(h, summary, CANCEL)
    [answer] = await wait_for(
        lambda: [m for m in h.slack.thread(ALERTS, alert.ts)[2:] if "outcome not known yet" in everything(m)],
        timeout=10,
    )
    settled = await wait_for(
        lambda: (m := h.slack.message(ALERTS, answer.ts)) is not None and "did not take effect" in m.text and m,
        timeout=15,
    )
    assert "safe to try again" in everything(settled)
    assert [action for action, _ in control_posts(h)] == ["cancel"]
    # Now free: a second cancel goes through.
    await click(h, summary, CANCEL)
    await summary_shows(h, summary, "CANCELED")
    assert [action for action, _ in control_posts(h)] == ["cancel", "cancel"]


async def test_a_second_pause_on_a_lagging_read_is_told_already_paused(harness: Harness) -> None:
    """Found by review: bob's pause, a moment after alice's, read the execution while Code Stream
    still showed it RUNNING, sent a second POST, and was told 'Code Stream rejected' instead of
    'already paused'. What Code Stream refuses because it is already done is said as such."""
    h = harness
    _, summary, execution_id = await rerun_and_summary(h)
    stale = await h.runtime.client.get_execution(execution_id)  # RUNNING
    await click(h, summary, PAUSE, user="U0ALICE")
    await summary_shows(h, summary, "PAUSED")
    # Code Stream's reads lag behind its writes: bob's two reads still show it RUNNING.
    stale_body = {**stale.model_dump(by_alias=True, exclude_none=True), "status": "RUNNING"}
    h.sim.inject(Fault(method="GET", path=f"{EXECUTIONS}{execution_id}", status=200, body=stale_body, times=2))
    await h.send.slash_command(f"pause {execution_id}", user="U0BOB")
    answer = await wait_for(
        lambda: [r for r in h.slack.responses if "U0BOB" in json.dumps(r.body) or "PAUSED" in json.dumps(r.body)],
        timeout=10,
    )
    said = json.dumps([r.body for r in answer], ensure_ascii=False)
    assert "already PAUSED" in said and "rejected" not in said, said
