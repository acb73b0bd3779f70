"""Exactly once, and access control without holes, through the real surfaces: signed HTTP
requests, the Code Stream simulator misbehaving as a slow server does, the store, and (in
test_crash.py) real processes killed mid-action."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import event as sa_event

from bot.core.intents import intent_key
from bot.simulator import SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID, Fault
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.buttons import ACTION_RERUN, ACTION_RESUME
from bot.slack.render.messages import METADATA_EVENT_TYPE
from bot.store import ActionRecord
from tests.harness import ALERTS, Harness, running_harness, wait_for_async, wait_for_rows

POST_PATH = "/codestream/api/git-events/"
EVENT_ID = SAMPLE_FAILED_GIT_ID
FORM = "application/x-www-form-urlencoded"


def bot_messages(h: Harness, channel: str = ALERTS) -> list[Message]:
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT"]


def thread_replies(h: Harness, alert: Message) -> list[Message]:
    return [m for m in h.slack.thread(alert.channel, alert.ts)[1:] if m.user == "U0BOT"]


def everything(message: Message | None) -> str:
    return "" if message is None else message.text + json.dumps(message.blocks)


def button_value(message: Message, action_id: str) -> str:
    for block in message.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {message.blocks}")


def has_buttons(message: Message | None) -> bool:
    return message is not None and ACTION_RERUN in json.dumps(message.blocks)


async def click(h: Harness, alert: Message, value: str, action_id: str = ACTION_RERUN, user: str = "U0ALICE") -> None:
    resp = await h.send.block_action(action_id, value, user=user, channel=alert.channel, message_ts=alert.ts)
    assert resp.status_code == 200


def ephemeral_texts(h: Harness) -> list[str]:
    return [json.dumps(m.blocks) + m.text for m in h.slack.ephemerals] + [json.dumps(r.body) for r in h.slack.responses]


# --- 1. an ambiguous POST is unknown until the event is read back -----------------------------


async def test_a_timed_out_post_that_code_stream_applies_later_runs_once_and_the_answer_catches_up(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path, CODESTREAM_TIMEOUT="0.5", BOT_RECONCILE_SECONDS="60") as h:
        alert = await h.post_alert("git", EVENT_ID)
        rerun, resume = button_value(alert, ACTION_RERUN), button_value(alert, ACTION_RESUME)
        before = h.sim.get_event("git", EVENT_ID)["executionIndex"]
        # The proxy gives up on the bot; Code Stream applies the rerun 6 s later (time enough for
        # Bob's click below to be answered while it is still unknown, on a loaded machine too).
        h.sim.inject(Fault(method="POST", path=POST_PATH, delay=30, apply_after=6.0, times=1))
        await click(h, alert, rerun)
        [summary] = await wait_for(lambda: thread_replies(h, alert), timeout=15)
        assert "outcome not known yet" in everything(summary)
        assert "safe to try again" not in everything(summary)
        # The alert is updated right after the summary is posted.
        checking = await wait_for(
            lambda: "checking whether it started" in everything(m := h.slack.message(ALERTS, alert.ts)) and m,
            timeout=10,
        )
        assert not has_buttons(checking)

        # Bob tries Resume meanwhile (a stale copy of the alert still shows the button).
        await click(h, alert, resume, ACTION_RESUME, user="U0BOB")
        [told] = await wait_for(lambda: h.slack.ephemerals, timeout=10)
        assert "<@U0ALICE>'s rerun of this event is in progress" in everything(told)

        final = await wait_for(
            lambda: "Rerun started" in everything(m := h.slack.message(ALERTS, summary.ts)) and m, timeout=20
        )
        assert f"#{before + 1}" in everything(final)
        assert h.sim.count("POST", POST_PATH) == 1
        assert h.sim.get_event("git", EVENT_ID)["executionIndex"] == before + 1
        rows = await h.store.actions.list()
        assert sorted(r.status for r in rows) == ["duplicate", "started"]
        # ... and the follow-through takes it to its end, resolving the alert.
        await wait_for(lambda: "Fixed by" in everything(h.slack.message(ALERTS, alert.ts)), timeout=20)


async def test_no_run_by_the_deadline_is_safe_to_try_again_only_then(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_RECONCILE_SECONDS="1") as h:
        alert = await h.post_alert("git", EVENT_ID)
        rerun = button_value(alert, ACTION_RERUN)
        h.sim.inject(Fault(method="POST", path=POST_PATH, status=504, times=1))  # a proxy; nothing ran
        await click(h, alert, rerun)
        [summary] = await wait_for(lambda: thread_replies(h, alert), timeout=10)
        assert "outcome not known yet" in everything(summary)
        final = await wait_for(
            lambda: "did not start" in everything(m := h.slack.message(ALERTS, summary.ts)) and m, timeout=15
        )
        assert "no run appeared within 1 s; safe to try again" in everything(final)
        await wait_for(lambda: has_buttons(h.slack.message(ALERTS, alert.ts)), timeout=10)
        [row] = await h.store.actions.list()
        assert row.status == "not_started" and row.finished_at is not None
        # Now, and only now, a click runs it.
        await click(h, alert, rerun, user="U0BOB")
        await wait_for(lambda: [m for m in thread_replies(h, alert) if "Rerun started" in everything(m)], timeout=10)
        assert h.sim.count("POST", POST_PATH) == 2
        assert sorted(r.status for r in await h.store.actions.list()) == ["not_started", "started"]


# --- 2. the claim holds while the action is in flight -------------------------------------------


async def test_the_claim_outlives_the_dedupe_window_while_code_stream_is_slow(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_DEDUPE_SECONDS="1", CODESTREAM_TIMEOUT="10") as h:
        h.sim.inject(Fault(method="POST", path=POST_PATH, delay=3, times=1))
        await h.send.slash_command(f"rerun {EVENT_ID}", user="U0ALICE")
        await wait_for(lambda: h.sim.count("POST", POST_PATH) == 1, timeout=10)
        asked = time.monotonic()
        await wait_for(lambda: time.monotonic() - asked > 1.5, timeout=5)  # the dedupe window has lapsed
        await h.send.slash_command(f"rerun {EVENT_ID}", user="U0BOB")
        await wait_for(lambda: bot_messages(h), timeout=15)  # Alice's summary
        rows = await wait_for_rows(h, 2)
        assert sorted(r.status for r in rows) == ["duplicate", "started"]
        assert h.sim.count("POST", POST_PATH) == 1


# --- 3. one intent per event, whatever the verb -------------------------------------------------


async def test_rerun_and_resume_of_one_event_at_the_same_time_start_one_run(harness: Harness) -> None:
    h = harness
    h.sim.inject(Fault(method="POST", path=POST_PATH, delay=0.5, times=1))
    await asyncio.gather(
        h.send.slash_command(f"rerun {EVENT_ID}", user="U0ALICE"),
        h.send.slash_command(f"resume {EVENT_ID}", user="U0BOB"),
    )
    await wait_for_rows(h, 2, within=10)
    await wait_for(lambda: bot_messages(h), timeout=10)  # the winner's summary: its row is final
    rows = await h.store.actions.list()
    assert sorted(r.status for r in rows) == ["duplicate", "started"]
    assert h.sim.count("POST", POST_PATH) == 1
    winner = next(r for r in rows if r.status == "started")
    told = await wait_for(lambda: [t for t in ephemeral_texts(h) if "Already in hand" in t], timeout=10)
    assert f"<@{winner.actor_id}>'s {winner.action} of this event is in progress" in told[0]


# --- 4. a signed request is accepted once ------------------------------------------------------


def _slash_body(h: Harness, text: str, user: str = "U0ALICE") -> bytes:
    fields = {
        "token": "legacy-verification-token",
        "team_id": h.slack.team_id,
        "channel_id": ALERTS,
        "channel_name": "cs-alerts",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/codestream",
        "text": text,
        "api_app_id": h.slack.app_id,
        "response_url": h.slack.new_response_url(channel=ALERTS, user=user),
        "trigger_id": "1.2.3",
    }
    return urlencode(fields).encode()


async def test_a_captured_request_replayed_after_the_dedupe_window_is_refused(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_DEDUPE_SECONDS="1") as h:
        body, stamp = _slash_body(h, f"rerun {EVENT_ID}"), int(time.time())
        assert (await h.send.raw(body, FORM, timestamp=stamp)).status_code == 200
        await wait_for(lambda: bot_messages(h), timeout=10)
        done = time.monotonic()
        await wait_for(lambda: time.monotonic() - done > 1.5, timeout=5)  # past the dedupe window
        replay = await h.send.raw(body, FORM, timestamp=stamp)  # same bytes, same signature
        assert replay.status_code == 401
        await h.send.slash_command(f"show {EVENT_ID}")  # a later request shows the bot moved on
        await wait_for(lambda: len(h.slack.responses) >= 1, timeout=10)
        assert h.sim.count("POST", POST_PATH) == 1
        assert len(await h.store.actions.list()) == 1


def test_the_default_dedupe_window_covers_slacks_signature_window() -> None:
    from bot.app.settings import load_settings

    assert load_settings({}).bot_dedupe_seconds >= 300


# --- 7. a store error after Code Stream acted never says "try again" -------------------------


def _failing(h: Harness, statement: str, times: int) -> list[int]:
    """Make the next ``times`` statements starting with ``statement`` fail as a locked database does."""
    failed: list[int] = []

    def before_execute(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().upper().startswith(statement) and len(failed) < times:
            failed.append(1)
            raise sqlite3.OperationalError("database is locked")

    sa_event.listen(h.store.statement_engine, "before_cursor_execute", before_execute)
    return failed


@pytest.mark.parametrize("times", [2, 50], ids=["passing", "lasting"])
async def test_a_store_error_after_the_rerun_never_invites_a_retry(harness: Harness, times: int) -> None:
    h = harness
    alert = await h.post_alert("git", EVENT_ID)
    failed = _failing(h, "INSERT INTO FOLLOWUPS", times)
    await click(h, alert, button_value(alert, ACTION_RERUN))
    [summary] = await wait_for(lambda: thread_replies(h, alert), timeout=10)
    assert "Rerun started" in everything(summary)
    await wait_for(lambda: len(failed) >= min(times, 6), timeout=15)
    if times == 2:  # the write is retried: the follow-through starts
        await wait_for(lambda: "Fixed by" in everything(h.slack.message(ALERTS, alert.ts)), timeout=20)
    # Nobody is told "something went wrong / try again" about an action that ran.
    await h.send.slash_command(f"show {SAMPLE_FAILED_GERRIT_ID} ")
    await wait_for(lambda: h.slack.responses, timeout=10)
    assert not any("went wrong" in t.lower() or "try again" in t.lower() for t in ephemeral_texts(h)[:-1])
    assert h.sim.count("POST", POST_PATH) == 1
    [row] = await h.store.actions.list()
    assert row.status == "started"


# --- 12. requests that fail verification make the bot do nothing ------------------------------


async def test_unverifiable_requests_get_401_and_cause_no_slack_or_code_stream_call(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    body = _slash_body(h, f"rerun {EVENT_ID}")
    calls_before = len(h.slack.calls)
    caplog.set_level(logging.INFO)
    bad = [
        {"X-Slack-Request-Timestamp": "12ab"},
        {"X-Slack-Request-Timestamp": "1e9"},
        {"X-Slack-Request-Timestamp": "-5"},
        {"X-Slack-Request-Timestamp": ""},
        {"X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": str(int(time.time()) - 400)},
    ]
    statuses = [(await h.send.raw(body, FORM, headers=headers)).status_code for headers in bad * 3]
    assert statuses == [401] * 21
    assert (await h.send.raw(body + b"\xff", FORM, signature="v0=abc")).status_code == 401
    assert h.slack.calls[calls_before:] == []
    assert h.sim.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await h.store.actions.list() == []


# --- 13. thread replies ----------------------------------------------------------------------


async def test_a_reply_mentioning_someone_else_or_under_another_apps_message_is_not_acted_on(
    harness: Harness,
) -> None:
    h = harness
    alert = await h.post_alert("git", EVENT_ID)
    impostor = h.slack.post_app_message(
        ALERTS,
        "looks like an alert",
        bot_id="B0OTHER",
        app_id="A0OTHER",
        user="U0OTHERBOT",
        metadata={
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {"kind": "gerrit", "id": SAMPLE_FAILED_GERRIT_ID},
        },
    )
    await h.send.message_event(ALERTS, "U0CAROL", "<@U0BOB> rerun", thread_ts=alert.ts)  # Carol asks Bob
    await h.send.message_event(ALERTS, "U0CAROL", "<@U0BOB|bob>: rerun!", thread_ts=alert.ts)
    await h.send.message_event(ALERTS, "U0CAROL", "rerun", thread_ts=impostor.ts)
    # The negative check's end point: a real request in the real alert's thread, answered after.
    await h.send.message_event(ALERTS, "U0BOB", "status", thread_ts=alert.ts)
    await wait_for(lambda: thread_replies(h, alert), timeout=10)
    assert h.posts() == 0
    assert await h.store.actions.list() == []
    assert [m for m in h.slack.thread(ALERTS, impostor.ts)[1:] if m.user == "U0BOT"] == []
    # The bot's own mention still works.
    await h.send.message_event(ALERTS, "U0CAROL", "<@U0BOT> rerun", thread_ts=alert.ts)
    await h.send.app_mention(ALERTS, "U0CAROL", "<@U0BOT> rerun", thread_ts=alert.ts)
    await wait_for(lambda: h.posts() == 1, timeout=10)


async def test_while_code_stream_cannot_be_read_the_intent_stays_claimed_past_the_deadline(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_RECONCILE_SECONDS="1") as h:
        alert = await h.post_alert("git", EVENT_ID)
        rerun = button_value(alert, ACTION_RERUN)
        before = h.sim.get_event("git", EVENT_ID)["executionIndex"]
        # A proxy error; Code Stream is unreadable for a while and applies the rerun meanwhile.
        h.sim.inject(Fault(method="POST", path=POST_PATH, status=504, delay=0.5, apply_after=2.5, times=1))
        await click(h, alert, rerun)
        await wait_for(lambda: h.sim.count("POST", POST_PATH) == 1, timeout=10)
        reads = h.sim.inject(Fault(method="GET", path=f"{POST_PATH}{EVENT_ID}", status=503))
        [summary] = await wait_for(lambda: thread_replies(h, alert), timeout=10)
        asked = time.monotonic()
        await wait_for(lambda: time.monotonic() - asked > 3 and reads.hits > 3, timeout=15)  # well past 1 s
        await click(h, alert, rerun, user="U0BOB")  # answered (Code Stream unreadable), never run again
        await wait_for(lambda: len(thread_replies(h, alert)) == 2, timeout=10)
        h.sim.clear_faults()
        await click(h, alert, rerun, user="U0BOB")  # readable again: the intent is still in hand
        await wait_for(lambda: [t for t in ephemeral_texts(h) if "Already" in t], timeout=10)
        final = await wait_for(
            lambda: "Rerun started" in everything(m := h.slack.message(ALERTS, summary.ts)) and m, timeout=15
        )
        assert f"#{before + 1}" in everything(final)
        versions = [everything(v) for v in final.history] + [everything(final)]
        assert not any("safe to try again" in v for v in versions)
        assert h.sim.count("POST", POST_PATH) == 1


def test_a_signature_is_remembered_as_long_as_its_timestamp_is_accepted() -> None:
    from bot.simulator.slack_sender import sign
    from bot.slack.signature import SignatureLedger

    windows: list[float] = []

    async def claim(_key: str, window: float) -> bool:
        windows.append(window)
        return True

    now = 1_800_000_000.0
    ledger = SignatureLedger(claim, clock=lambda: now)
    for stamp in (now + 250, now, now - 290):  # Slack's clock ahead of ours, equal, behind
        headers = {"x-slack-request-timestamp": str(int(stamp)), "x-slack-signature": sign("secret", int(stamp), b"x")}
        assert asyncio.run(ledger.first_use(headers))
    # Remembered until the timestamp falls out of the window (plus a margin), whatever the skew.
    assert [round(w) for w in windows] == [580, 330, 40]


async def test_a_request_replayed_to_another_replica_does_nothing(tmp_path: Path) -> None:
    shared = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_harness(tmp_path / "a", BOT_DATABASE_URL=shared) as a,
        running_harness(tmp_path / "b", BOT_DATABASE_URL=shared) as b,
    ):
        body, stamp = _slash_body(a, f"rerun {EVENT_ID}"), int(time.time())
        assert (await a.send.raw(body, FORM, timestamp=stamp)).status_code == 200
        await wait_for(lambda: a.sim.count("POST", POST_PATH) == 1, timeout=10)
        replay = await b.send.raw(body, FORM, timestamp=stamp)  # acked (the check is after the ack)...
        assert replay.status_code == 200
        await b.send.slash_command(f"show {SAMPLE_FAILED_GERRIT_ID}")  # ...a later request is answered
        await wait_for(lambda: b.slack.responses, timeout=10)
        assert b.sim.count("POST", "/codestream/api/") == 0  # ...and the replay did nothing
        assert [r.request_id for r in await a.store.actions.list()] and len(await a.store.actions.list()) == 1


async def test_a_click_told_nothing_was_sent_can_be_clicked_again_at_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's transaction committed but its answer was lost (the connection reset at the
    commit, as in a failover): the person is told nothing was sent, which is true. Clicking again
    at once must run it, not answer "already in hand" with the first click's orphaned claim."""
    h = harness
    alert = await h.post_alert("git", EVENT_ID)
    claim = h.store.intents.claim
    lost: list[str] = []

    async def committed_then_lost(*args: Any, **kwargs: Any) -> Any:
        won = await claim(*args, **kwargs)
        if not lost:
            lost.append(str(args[0]))
            raise ConnectionResetError("connection reset by peer after COMMIT")
        return won

    monkeypatch.setattr(h.store.intents, "claim", committed_then_lost)
    await click(h, alert, button_value(alert, ACTION_RERUN))
    [refused] = await wait_for(lambda: thread_replies(h, alert), timeout=20)
    assert "nothing was sent to Code Stream" in everything(refused)
    assert lost and h.sim.count("POST", POST_PATH) == 0
    await click(h, alert, button_value(alert, ACTION_RERUN))
    started = await wait_for(
        lambda: [m for m in thread_replies(h, alert) if "Rerun started" in everything(m)], timeout=20
    )
    assert len(started) == 1 and h.sim.count("POST", POST_PATH) == 1
    assert not any("in hand" in t for t in ephemeral_texts(h))
    rows = sorted((r.status for r in await h.store.actions.list()), key=str)
    assert rows == ["not_started", "started"]  # the orphan closed as never sent, then the run


async def test_an_orphaned_claim_is_released_by_the_reconciler_without_another_click(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same lost commit, and nobody clicks again: the claim does not block the event for its
    in-flight window; the reconciler's next round closes the row as never sent and releases it."""
    h = harness
    alert = await h.post_alert("git", EVENT_ID)
    claim = h.store.intents.claim

    async def committed_then_lost(*args: Any, **kwargs: Any) -> Any:
        await claim(*args, **kwargs)
        raise ConnectionResetError("connection reset by peer after COMMIT")

    monkeypatch.setattr(h.store.intents, "claim", committed_then_lost)
    await click(h, alert, button_value(alert, ACTION_RERUN))
    await wait_for(lambda: thread_replies(h, alert), timeout=20)
    monkeypatch.setattr(h.store.intents, "claim", claim)

    async def closed() -> ActionRecord | None:
        rows = await h.store.actions.list()
        return rows[0] if len(rows) == 1 and rows[0].finished_at is not None else None

    row = await wait_for_async(closed, within=20)
    assert row.status == "not_started" and h.sim.count("POST", POST_PATH) == 0
    assert await h.store.claims.get(intent_key("git", EVENT_ID)) is None
