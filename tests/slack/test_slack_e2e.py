"""Every Slack surface end to end: real HTTP on loopback, requests signed as Slack signs them,
the Code Stream simulator behind the bot and the Slack stand-in in front of it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bot.codestream.models import EventKind
from bot.simulator import (
    SAMPLE_FAILED_DOCKER_ID,
    SAMPLE_FAILED_GERRIT_ID,
    SAMPLE_FAILED_GIT_ID,
    Fault,
)
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.buttons import ACTION_OPEN, ACTION_RERUN, ACTION_RESUME
from bot.slack.render.messages import METADATA_EVENT_TYPE
from tests.harness import ALERTS, Harness, running_harness, wait_for_rows

KIND_PATH = {"git": "git-events", "gerrit": "gerrit-events", "docker": "registry-events"}
SAMPLES: list[tuple[EventKind, str]] = [
    ("git", SAMPLE_FAILED_GIT_ID),
    ("gerrit", SAMPLE_FAILED_GERRIT_ID),
    ("docker", SAMPLE_FAILED_DOCKER_ID),
]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def bot_messages(h: Harness, channel: str = ALERTS) -> list[Message]:
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT"]


def thread_replies(h: Harness, alert: Message) -> list[Message]:
    return [m for m in h.slack.thread(alert.channel, alert.ts)[1:] if m.user == "U0BOT"]


def everything(message: Message) -> str:
    return message.text + json.dumps(message.blocks)


def button(message: Message, action_id: str) -> dict[str, Any]:
    for block in message.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {message.blocks}")


async def click(h: Harness, alert: Message, action_id: str, user: str = "U0ALICE", retry: int = 0) -> None:
    value = button(alert, action_id)["value"]
    resp = await h.send.block_action(
        action_id, value, user=user, channel=alert.channel, message_ts=alert.ts, retry=retry
    )
    assert resp.status_code == 200


# --- slash command ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "event_id"), SAMPLES, ids=[k for k, _ in SAMPLES])
@pytest.mark.parametrize("verb", ["rerun", "resume"])
async def test_slash_command_acts_on_each_kind_and_posts_a_summary(
    harness: Harness, kind: EventKind, event_id: str, verb: str
) -> None:
    before = harness.sim.get_event(kind, event_id)
    resp = await harness.send.slash_command(f"{verb} {kind} {event_id}", user="U0ALICE")
    assert resp.status_code == 200
    [summary] = await wait_for(lambda: bot_messages(harness))
    posts = [r for r in harness.sim.requests if r.method == "POST" and r.path.startswith("/codestream/api/")]
    assert [(r.path, r.query["action"]) for r in posts] == [
        (f"/codestream/api/{KIND_PATH[kind]}/{event_id}", verb.capitalize())
    ]
    after = harness.sim.get_event(kind, event_id)
    text = everything(summary)
    assert f"{verb.capitalize()} started" in text
    assert "<@U0ALICE>" in text
    assert f"#{after['executionIndex']}" in text
    assert after["executionLink"].rsplit("/", 1)[1] in text  # the execution link
    assert "RUNNING" in text
    subject = before.get("subject") or before.get("imageName")
    assert subject and subject in text
    branch = before.get("targetBranch") or before.get("branch") or before.get("tag")
    assert branch and branch in text
    [row] = await harness.store.actions.list()
    assert (row.surface, row.status, row.actor_name) == ("slash", "started", "alice")


async def test_pasted_code_stream_link_works(harness: Harness) -> None:
    link = f"<https://vra.example.com/codestream/api/gerrit-events/{SAMPLE_FAILED_GERRIT_ID}>"
    await harness.send.slash_command(f"rerun {link}")
    await wait_for(lambda: bot_messages(harness))
    assert harness.sim.count("POST", f"/codestream/api/gerrit-events/{SAMPLE_FAILED_GERRIT_ID}") == 1


async def test_repeated_slash_command_posts_once(harness: Harness) -> None:
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
    await wait_for(lambda: bot_messages(harness))
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0BOB")
    [dup] = await wait_for(lambda: [r for r in harness.slack.responses if r.user == "U0BOB"])
    assert dup.action == "ephemeral"
    assert "<@U0ALICE>" in json.dumps(dup.body)
    assert harness.sim.count("POST", "/codestream/api/git-events/") == 1
    assert len(bot_messages(harness)) == 1


async def test_a_burst_by_three_people_looks_each_of_them_up_once(harness: Harness) -> None:
    """30 commands at once by 3 people: one users.info per person (the look-ups in flight are
    shared), one rerun, and every command answered."""
    people = ["U0ALICE", "U0BOB", "U0CAROL"]
    await asyncio.gather(
        *(harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user=people[i % 3]) for i in range(30))
    )
    await wait_for(lambda: len(harness.slack.responses) + len(bot_messages(harness)) >= 30)
    assert sorted(str(c.args.get("user")) for c in harness.slack.calls_to("users.info")) == people
    assert harness.sim.count("POST", "/codestream/api/git-events/") == 1


async def test_mention_anywhere_works_like_the_slash_command(harness: Harness) -> None:
    await harness.send.app_mention(ALERTS, "U0CAROL", f"<@U0BOT> rerun {SAMPLE_FAILED_GIT_ID}")
    [summary] = await wait_for(lambda: bot_messages(harness))
    assert "<@U0CAROL>" in everything(summary)
    assert harness.posts() == 1
    [row] = await harness.store.actions.list()
    assert row.surface == "mention"


# --- buttons on alerts -----------------------------------------------------------------------


def updated_alert(harness: Harness, alert: Message, *, times: int) -> Message | None:
    """The alert once it has been updated at least ``times`` times."""
    message = harness.slack.message(ALERTS, alert.ts)
    return message if message is not None and len(message.history) >= times else None


@pytest.mark.parametrize(("kind", "event_id"), SAMPLES, ids=[k for k, _ in SAMPLES])
@pytest.mark.parametrize("action_id", [ACTION_RERUN, ACTION_RESUME])
async def test_alert_buttons_act_and_answer_in_the_thread(
    harness: Harness, kind: EventKind, event_id: str, action_id: str
) -> None:
    alert = await harness.post_alert(kind, event_id)
    assert alert.metadata == {"event_type": METADATA_EVENT_TYPE, "event_payload": {"kind": kind, "id": event_id}}
    assert button(alert, action_id)["confirm"]  # a confirm dialog guards the click
    await click(harness, alert, action_id)
    [summary] = await wait_for(lambda: thread_replies(harness, alert))
    verb = "Rerun" if action_id == ACTION_RERUN else "Resume"
    assert f"{verb} started" in everything(summary)
    assert harness.posts() == 1
    updated = await wait_for(lambda: updated_alert(harness, alert, times=1))
    # Code Stream answered at once: the alert goes straight to the outcome (one update, no
    # "requested by" first); the buttons are gone while the run is going.
    assert len(updated.history) == 1 and "requested by" not in everything(updated)
    assert "<@U0ALICE>" in everything(updated)
    assert ACTION_RERUN not in json.dumps(updated.blocks)
    assert updated.metadata is not None  # thread replies can still find the event


async def test_a_slow_rerun_marks_its_alert_requested_by_until_it_ends(tmp_path: Path) -> None:
    async with running_harness(tmp_path, CODESTREAM_TIMEOUT="10") as harness:  # a 3 s POST is no timeout
        await _slow_rerun_is_marked(harness)


async def _slow_rerun_is_marked(harness: Harness) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    harness.sim.inject(Fault(method="POST", path="/codestream/api/git-events/", delay=3.0))
    await click(harness, alert, ACTION_RERUN)
    # Still running after two seconds: the alert says who asked, without its buttons.
    marked = await wait_for(lambda: updated_alert(harness, alert, times=1))
    assert "Rerun requested by <@U0ALICE>" in everything(marked)
    assert ACTION_RERUN not in json.dumps(marked.blocks)
    [summary] = await wait_for(lambda: thread_replies(harness, alert))
    assert "Rerun started" in everything(summary)
    done = await wait_for(lambda: updated_alert(harness, alert, times=2))
    assert "requested by" not in everything(done) and "<@U0ALICE>" in everything(done)
    assert harness.posts() == 1


async def test_double_click_posts_once(harness: Harness) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    await asyncio.gather(click(harness, alert, ACTION_RERUN, "U0ALICE"), click(harness, alert, ACTION_RERUN, "U0BOB"))
    await wait_for(lambda: thread_replies(harness, alert))
    await wait_for(lambda: len(harness.slack.ephemerals) == 1)
    assert harness.sim.count("POST", "/codestream/api/git-events/") == 1
    assert len(thread_replies(harness, alert)) == 1
    rows = await harness.store.actions.list()
    assert sorted(r.status for r in rows) == ["duplicate", "started"]


async def test_open_execution_button_is_acknowledged_without_acting(harness: Harness) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    resp = await harness.send.block_action(ACTION_OPEN, None, channel=ALERTS, message_ts=alert.ts)
    assert resp.status_code == 200
    assert harness.posts() == 0


async def test_forged_button_value_gets_a_clear_answer(harness: Harness) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    resp = await harness.send.block_action(
        ACTION_RERUN, '{"kind":"git","id":"../../iaas"}', channel=ALERTS, message_ts=alert.ts
    )
    assert resp.status_code == 200
    await wait_for(lambda: harness.slack.ephemerals)
    assert harness.posts() == 0


# --- thread replies --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["rerun", "  RERUN ", "<@U0BOT> rerun"])
async def test_thread_reply_reruns_the_alerts_event(harness: Harness, text: str) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    if text.startswith("<@"):
        # Slack delivers both a message event and an app_mention for the same reply.
        msg = harness.slack.post_user_message(ALERTS, "U0BOB", text, alert.ts)
        payload = {
            "type": "message",
            "channel": ALERTS,
            "user": "U0BOB",
            "text": text,
            "ts": msg.ts,
            "thread_ts": alert.ts,
        }
        await asyncio.gather(harness.send.event(payload), harness.send.event({**payload, "type": "app_mention"}))
    else:
        await harness.send.message_event(ALERTS, "U0BOB", text, thread_ts=alert.ts)
    [summary] = await wait_for(lambda: thread_replies(harness, alert))
    assert "Rerun started" in everything(summary) and "<@U0BOB>" in everything(summary)
    assert harness.posts() == 1
    [row] = await harness.store.actions.list()
    assert row.surface == "thread"


async def test_status_reply_shows_without_acting(harness: Harness) -> None:
    alert = await harness.post_alert("gerrit", SAMPLE_FAILED_GERRIT_ID)
    await harness.send.message_event(ALERTS, "U0BOB", "status", thread_ts=alert.ts)
    [summary] = await wait_for(lambda: thread_replies(harness, alert))
    assert "FAILED" in everything(summary)
    assert harness.posts() == 0


@pytest.mark.parametrize("order", ["original-first", "retry-first", "together"])
async def test_slack_retry_of_a_thread_reply_acts_and_answers_once(harness: Harness, order: str) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    msg = harness.slack.post_user_message(ALERTS, "U0BOB", "rerun", alert.ts)
    event = {
        "type": "message",
        "channel": ALERTS,
        "user": "U0BOB",
        "text": "rerun",
        "ts": msg.ts,
        "thread_ts": alert.ts,
    }
    original = harness.send.event(event, event_id="Ev0RETRY")
    retry = harness.send.event(event, retry_num=1, retry_reason="http_timeout", event_id="Ev0RETRY")
    if order == "original-first":
        await original
        await retry
    elif order == "retry-first":
        await retry
        await original
    else:
        await asyncio.gather(original, retry)
    await wait_for(lambda: thread_replies(harness, alert))
    [row] = await wait_for_rows(harness, 1)
    assert row.status == "started"
    assert harness.sim.count("POST", "/codestream/api/git-events/") == 1
    # A marker shows the other delivery was dropped, not merely slow.
    await harness.send.message_event(ALERTS, "U0CAROL", "status", thread_ts=alert.ts)
    await wait_for(lambda: len(thread_replies(harness, alert)) == 2)
    assert len(await harness.store.actions.list()) == 1
    assert harness.slack.ephemerals == []


async def test_thread_found_from_message_metadata_when_the_store_does_not_know_it(harness: Harness) -> None:
    parent = harness.slack.post_bot_message(
        ALERTS,
        "an alert from another replica",
        metadata={
            "event_type": METADATA_EVENT_TYPE,
            "event_payload": {"kind": "docker", "id": SAMPLE_FAILED_DOCKER_ID},
        },
    )
    await harness.send.message_event(ALERTS, "U0BOB", "resume", thread_ts=parent.ts)
    await wait_for(lambda: [m for m in harness.slack.thread(ALERTS, parent.ts)[1:] if m.user == "U0BOT"])
    assert harness.sim.count("POST", f"/codestream/api/registry-events/{SAMPLE_FAILED_DOCKER_ID}") == 1


async def test_unrelated_threads_chatter_and_bot_messages_are_ignored(harness: Harness) -> None:
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    other = harness.slack.post_user_message(ALERTS, "U0CAROL", "lunch?")
    calls_before = len(harness.slack.calls)
    await harness.send.message_event(ALERTS, "U0BOB", "rerun", thread_ts=other.ts)  # not an alert
    await harness.send.message_event(ALERTS, "U0BOB", "should we rerun this?", thread_ts=alert.ts)  # chatter
    await harness.send.message_event(ALERTS, "U0BOB", "rerun")  # not in a thread
    await harness.send.event(
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0BOT",
            "channel": ALERTS,
            "text": "rerun",
            "ts": "1.2",
            "thread_ts": alert.ts,
        }
    )
    await harness.send.event(
        {"type": "message", "subtype": "message_changed", "channel": ALERTS, "message": {"text": "rerun"}, "ts": "1.3"}
    )
    # A negative check needs a point after which stray work would have shown: a final "status"
    # reply in the alert thread, answered after the others were processed (each listener that
    # ignores a message returns before doing any I/O).
    await harness.send.message_event(ALERTS, "U0BOB", "status", thread_ts=alert.ts)
    await wait_for(lambda: thread_replies(harness, alert))
    # Events are worked on concurrently after their acks: the look-up for the unknown thread may
    # still be on its way when "status" is answered.
    await wait_for(lambda: harness.slack.calls_to("conversations.replies"))
    assert harness.posts() == 0
    methods = [c.method for c in harness.slack.calls[calls_before:] if c.method not in ("auth.test", "users.info")]
    # Only the look-up for the unknown thread, and the answer to "status".
    assert sorted(methods) == ["chat.postMessage", "conversations.replies"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (None, "has no git event"),
        (
            Fault(method="POST", path="/codestream/api/git-events/", status=403, body={"message": "not a member"}),
            "refused",
        ),
        (Fault(path="/codestream/api/", status=401), "log in"),
        (Fault(path="/codestream/api/", status=503), "unavailable"),
        (Fault(path="/codestream/api/", garbage=True), "could not read"),
    ],
    ids=["not-found", "forbidden", "auth-failed", "unavailable", "garbage"],
)
async def test_each_error_class_gets_its_message_and_the_bot_keeps_working(
    harness: Harness, fault: Fault | None, says: str
) -> None:
    target = UNKNOWN_ID if fault is None else SAMPLE_FAILED_GIT_ID
    if fault is not None:
        harness.sim.inject(fault)
    await harness.send.slash_command(f"rerun {target}")
    [response] = await wait_for(lambda: harness.slack.responses)
    assert response.action == "ephemeral"
    assert says in json.dumps(response.body).lower()
    harness.sim.clear_faults()
    await harness.send.slash_command(f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}")
    await wait_for(lambda: bot_messages(harness))


async def test_ten_kilobyte_commit_subject_still_posts_valid_blocks(harness: Harness) -> None:
    harness.sim.update_event("git", SAMPLE_FAILED_GIT_ID, subject="Refactor <everything> & more " * 400)
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)  # the stand-in rejects invalid_blocks
    await click(harness, alert, ACTION_RERUN)
    [summary] = await wait_for(lambda: thread_replies(harness, alert))
    assert "Refactor &lt;everything&gt; &amp; more" in everything(summary)
    assert all(c.ok for c in harness.slack.calls_to("chat.postMessage") + harness.slack.calls_to("chat.update"))


# --- the work after the ack runs on its own (the listener returns at once) --------------------


@pytest.mark.parametrize("surface", ["slash", "button"])
async def test_a_bug_in_the_work_after_the_ack_is_logged_and_the_person_told(
    harness: Harness, surface: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The work outlives its listener, so Bolt's error handler no longer sees its errors: the
    bot's own does the same (one log line, a polite ephemeral), and the bot keeps working."""
    assert harness.bot.handlers is not None
    runtime = harness.runtime  # its Actions and InFlight are the Slack handlers' own
    alert = await harness.post_alert("git", SAMPLE_FAILED_GIT_ID)
    real_perform = runtime.actions.perform
    calls = 0

    async def perform_with_a_bug(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")  # stands for any unexpected error
        return await real_perform(*args, **kwargs)

    monkeypatch.setattr(runtime.actions, "perform", perform_with_a_bug)
    if surface == "slash":
        resp = await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", channel=ALERTS)
        assert resp.status_code == 200
    else:
        await click(harness, alert, ACTION_RERUN)
    [apology] = await wait_for(lambda: harness.slack.ephemerals_for("U0ALICE"))
    assert "Something went wrong on the bot's side" in everything(apology)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["unhandled error in a listener"]
    assert harness.posts() == 0
    await wait_for(lambda: runtime.inflight.count == 0)  # the apology's own send counted too
    # The process goes on: the next request runs.
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", channel=ALERTS)
    await wait_for(lambda: harness.posts() == 1)


async def test_shutdown_waits_for_work_still_queued_behind_its_ack(harness: Harness) -> None:
    """Acked work is counted in flight from the ack on, so a graceful shutdown finishes it."""
    assert harness.bot.handlers is not None
    runtime = harness.runtime
    harness.sim.inject(Fault(method="POST", path="/codestream/api/git-events/", delay=0.5))
    resp = await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", channel=ALERTS)
    assert resp.status_code == 200
    assert runtime.inflight.count == 1  # already, before the work has started
    await harness.bot.stop()
    assert harness.posts() == 1
    assert any("started" in everything(m) for m in bot_messages(harness))
