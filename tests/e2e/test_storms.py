"""Storms through the real surfaces: when many pipelines fail at once, one digest message lists
them (why each failed, a menu per row), its "Rerun all failed" reruns each failure exactly once
even when clicked twice, a row's menu reruns just that one, and nothing is lost or posted twice."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError

from bot.core.fileconfig import Match, Route
from bot.core.routing import Router
from bot.core.watcher import Watcher, WatchTiming
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.digest import ACTION_DIGEST_ROW, ACTION_RERUN_ALL, row_value
from bot.store import DigestRecord, DigestRow
from tests.harness import ALERTS, Harness, harness_with_config, wait_for_async

GIT_EVENTS = "/codestream/api/git-events/"
OTHER = "C0OTHER"


def watcher_of(h: Harness, *, lookback: float = 900, **options: Any) -> Watcher:
    return h.runtime.watcher(
        Router(fallback=ALERTS), timing=WatchTiming(30, lookback), holder="test-watcher", **options
    )


def top_level(h: Harness) -> list[Message]:
    return [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and m.thread_ts is None]


def digests(h: Harness) -> list[Message]:
    return [m for m in top_level(h) if (m.metadata or {}).get("event_type") == "codestream_digest"]


def storm_alerts(h: Harness) -> list[Message]:
    """Single alerts of the storm's pipelines (there should be none while a digest lists them)."""
    return [m for m in top_level(h) if "storm-" in m.text and m not in digests(h)]


def reruns(h: Harness) -> int:
    return sum(1 for r in h.sim.requests if r.method == "POST" and r.path.startswith(GIT_EVENTS))


def blocks_text(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


async def storm(h: Harness, count: int = 12, **fields: str) -> tuple[Watcher, Message, list[dict[str, object]]]:
    """The seeded failures alerted first, then ``count`` pipelines fail at once: the digest."""
    watcher = watcher_of(h)
    await watcher.poll_once()
    before = len(top_level(h))
    events = h.sim.fail_burst(count, **fields)
    stats = await watcher.poll_once()
    assert stats.kinds["git"].digested == count
    assert len(top_level(h)) == before + 1
    [digest] = digests(h)
    return watcher, digest, events


def current(h: Harness, message: Message) -> Message:
    found = h.slack.message(ALERTS, message.ts)
    assert found is not None
    return found


async def test_twelve_failures_at_once_are_one_digest_and_rerun_all_runs_each_once_even_clicked_twice(
    harness: Harness,
) -> None:
    h = harness
    watcher, digest, events = await storm(h, 12)
    text = blocks_text(digest)
    assert "12 pipeline failures" in text
    assert all(f"storm-{n:02d}" in text for n in range(1, 13))
    assert text.count("Build › compile") == 12  # why each failed, read once per execution
    assert "Rerun all failed (12)" in text and "Rerun 12 failed pipelines?" in text  # the confirm names the count
    assert storm_alerts(h) == []
    h.sim.reset_requests()

    # Two people (or one double click) press "Rerun all" at once: each failure runs once.
    await asyncio.gather(
        h.send.block_action(ACTION_RERUN_ALL, user="U0ALICE", channel=ALERTS, message_ts=digest.ts),
        h.send.block_action(ACTION_RERUN_ALL, user="U0BOB", channel=ALERTS, message_ts=digest.ts),
    )
    await wait_for(lambda: reruns(h) >= 12, timeout=20)
    said = await wait_for(lambda: thread_note(h, digest), timeout=20)
    assert "rerun 12 failed pipelines: 12 started" in said.text
    assert reruns(h) == 12
    assert {r.path.split("?")[0].rsplit("/", 1)[-1] for r in h.sim.requests if r.method == "POST"} == {
        str(e["id"]) for e in events
    }
    refused = [e for e in h.slack.ephemerals if "Rerun all" in json.dumps(e.blocks) or "Nothing left" in e.text]
    assert len(refused) == 1  # the second click was told, not acted on
    rows = [r for r in await h.store.actions.list() if r.surface == "button"]
    assert len(rows) == 12 and {r.status for r in rows} == {"started"}  # audited, one row per event

    # The rows follow their runs to the end, in the digest itself; nothing is left to rerun.
    await wait_for(lambda: blocks_text(current(h, digest)).count("Fixed by") == 12, timeout=30)
    final = blocks_text(current(h, digest))
    assert "Rerun all failed" not in final and "12 fixed" in final
    assert reruns(h) == 12
    await watcher.stop()


async def test_a_row_menu_reruns_that_failure_only_and_shows_it_on_its_row(harness: Harness) -> None:
    h = harness
    watcher, digest, events = await storm(h, 8)
    third = str(events[2]["id"])
    stale = copy.deepcopy(digest)  # the list as a second screen still shows it
    h.sim.reset_requests()
    value = row_value("rerun", "git", third, int(str(events[2]["executionIndex"])))
    await h.send.block_action(ACTION_DIGEST_ROW, user="U0ALICE", channel=ALERTS, message_ts=digest.ts, option=value)
    await wait_for(lambda: reruns(h) == 1, timeout=10)
    [post] = [r for r in h.sim.requests if r.method == "POST"]
    assert third in post.path and post.query.get("action") == "Rerun"
    # The summary goes in the digest's thread; the row (and only it) says who reran it.
    await wait_for(lambda: any(m.thread_ts == digest.ts and "storm-03" in m.text for m in h.slack.messages(ALERTS)))
    await wait_for(lambda: "by <@U0ALICE>" in blocks_text(current(h, digest)), timeout=10)
    shown = blocks_text(current(h, digest))
    assert shown.count("<@U0ALICE>") == 1 and "Rerun all failed (7)" in shown
    assert len(digests(h)) == 1 and storm_alerts(h) == []  # redrawn in place, never a new message
    # The same option clicked again on the list as it was (a double click, a stale screen): told, not rerun.
    await h.send.block_action(ACTION_DIGEST_ROW, user="U0BOB", channel=ALERTS, message=stale, option=value)
    await wait_for(lambda: len(h.slack.ephemerals_for("U0BOB")) == 1, timeout=10)
    assert reruns(h) == 1
    await watcher.stop()


async def test_a_rerun_reply_in_a_digest_thread_says_what_to_do_and_runs_nothing(harness: Harness) -> None:
    h = harness
    watcher, digest, _ = await storm(h, 6)
    h.sim.reset_requests()
    await h.send.message_event(ALERTS, "U0ALICE", "rerun", thread_ts=digest.ts)
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    [answer] = h.slack.ephemerals_for("U0ALICE")
    assert "digest of several failures" in answer.text and "Rerun all failed" in answer.text
    assert reruns(h) == 0
    await watcher.stop()


async def test_failures_at_the_threshold_are_alerted_one_by_one_and_a_continuing_storm_joins_its_digest(
    harness: Harness,
) -> None:
    h = harness
    watcher = watcher_of(h, digest_threshold=5, lookback=1)  # the seeded failures are not in the count
    await watcher.poll_once()
    h.sim.fail_burst(5, prefix="calm")
    await watcher.poll_once()
    assert len([m for m in top_level(h) if "calm-" in m.text]) == 5 and digests(h) == []
    # A sixth failure within the window is more than five for this channel: the digest starts.
    h.sim.fail_burst(1, prefix="storm")
    await watcher.poll_once()
    [digest] = digests(h)
    assert "storm-01" in blocks_text(digest)
    # More failures while it is recent join it, redrawn in place: still one message.
    h.sim.fail_burst(3, prefix="later")
    stats = await watcher.poll_once()
    assert stats.kinds["git"].digested == 3
    [same] = digests(h)
    shown = blocks_text(same)
    assert same.ts == digest.ts and all(f"later-0{n}" in shown for n in (1, 2, 3)) and "4 pipeline failures" in shown
    assert not [m for m in top_level(h) if "later-" in m.text and m.ts != digest.ts]
    await watcher.stop()


async def test_a_rate_limited_digest_waits_for_slack_and_arrives_once(harness: Harness) -> None:
    h = harness
    watcher = watcher_of(h)
    await watcher.poll_once()
    h.slack.fail("chat.postMessage", "ratelimited", retry_after=1, times=1)
    h.sim.fail_burst(7)
    await watcher.poll_once()
    [digest] = digests(h)
    assert "7 pipeline failures" in blocks_text(digest)
    assert storm_alerts(h) == []
    again = await watcher.poll_once()  # nothing new, nothing posted twice
    assert again.alerts_posted == 0 and len(digests(h)) == 1
    await watcher.stop()


async def test_a_digest_slack_refused_is_posted_on_the_next_cycle_and_nothing_is_lost(harness: Harness) -> None:
    h = harness
    watcher = watcher_of(h)
    await watcher.poll_once()
    h.slack.fail("chat.postMessage", "fatal_error", times=1)
    h.sim.fail_burst(7)
    first = await watcher.poll_once()
    assert digests(h) == [] and first.kinds["git"].pending == 7
    second = await watcher.poll_once()
    assert second.kinds["git"].digested == 7
    [digest] = digests(h)
    assert all(f"storm-0{n}" in blocks_text(digest) for n in range(1, 8))
    await watcher.stop()


@pytest.fixture
async def payments_only(tmp_path: Path) -> AsyncIterator[Harness]:
    """Bob may rerun Payments' pipelines only; alice anything."""
    config = "access:\n  rules:\n    - users: [U0ALICE]\n    - users: [U0BOB]\n      projects: [Payments]\n"
    async with harness_with_config(tmp_path, config) as h:
        yield h


async def test_rerun_all_checks_access_for_each_failure(payments_only: Harness) -> None:
    h = payments_only
    watcher = watcher_of(h)
    await watcher.poll_once()
    h.sim.fail_burst(3, prefix="pay", project="Payments")
    h.sim.fail_burst(4, prefix="inv", project="Inventory")
    await watcher.poll_once()
    [digest] = digests(h)
    h.sim.reset_requests()
    await h.send.block_action(ACTION_RERUN_ALL, user="U0BOB", channel=ALERTS, message_ts=digest.ts)
    said = await wait_for(lambda: thread_note(h, digest), timeout=20)
    assert "3 started" in said.text and "4 not allowed for you" in said.text
    assert reruns(h) == 3
    assert "Rerun all failed (4)" in blocks_text(current(h, digest))  # Inventory's still wait for someone allowed
    await watcher.stop()


def thread_note(h: Harness, digest: Message) -> Message | None:
    """What "Rerun all" said in the digest's thread."""
    said = [m for m in h.slack.messages(ALERTS) if m.thread_ts == digest.ts and "asked Code Stream" in m.text]
    return said[0] if said else None


# --- found by review: each failed before its fix ------------------------------------------------


async def test_a_fixed_row_ends_its_follow_through_and_resolves_only_its_own_failure(harness: Harness) -> None:
    h = harness
    watcher, digest, events = await storm(h, 6)
    first = events[0]
    value = row_value("rerun", "git", str(first["id"]), int(str(first["executionIndex"])))
    await h.send.block_action(ACTION_DIGEST_ROW, user="U0ALICE", channel=ALERTS, message_ts=digest.ts, option=value)
    await wait_for(lambda: "Fixed by" in blocks_text(current(h, digest)), timeout=30)
    await wait_for_async(lambda: _no_open_followups(h), within=15)  # it ended (it kept polling before)
    for event in events[1:]:  # the other failures are still broken: their alerts stay open
        alert = await h.store.alerts.get("git", str(event["id"]), int(str(event["executionIndex"])))
        assert alert is not None and alert.resolved_at is None
    await watcher.stop()


def two_channels() -> Router:
    """Payments' failures to ALERTS, Inventory's to OTHER."""
    pay, inv = Route(match=Match(project=("Pay",)), channel=ALERTS), Route(match=Match(project=("Inv",)), channel=OTHER)
    return Router([pay, inv])


async def _no_open_followups(h: Harness) -> bool:
    return await h.store.followups.active_count() == 0


async def test_a_store_error_while_flushing_one_channel_holds_back_no_other(harness: Harness) -> None:
    h = harness
    router = two_channels()
    watcher = h.runtime.watcher(router, timing=WatchTiming(30, 900), holder="test-watcher")
    await watcher.poll_once()
    h.sim.fail_burst(7, prefix="pay", project="Pay")
    h.sim.fail_burst(7, prefix="inv", project="Inv")
    save = h.store.digests.save

    async def fails_once(record: DigestRecord, rows: Sequence[DigestRow]) -> int:
        h.store.digests.save = save  # type: ignore[method-assign]
        raise OperationalError("INSERT INTO digests", {}, Exception("database is locked"))

    h.store.digests.save = fails_once  # type: ignore[method-assign]
    await watcher.poll_once()  # the first digest posted, its record not saved: kept for the next cycle
    await watcher.poll_once()
    assert len([m for m in h.slack.messages(OTHER) if m.thread_ts is None]) == 1  # not held for 10 min
    assert len(digests(h)) == 1 and storm_alerts(h) == []  # and the first one was never posted twice
    await watcher.stop()


async def test_a_store_error_never_draws_one_alert_over_a_digest(harness: Harness) -> None:
    h = harness
    watcher, digest, events = await storm(h, 8)
    look_up = h.store.digests.at
    calls = 0

    async def second_call_fails(channel: str, ts: str) -> DigestRecord | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OperationalError("SELECT digests", {}, Exception("connection reset"))
        return await look_up(channel, ts)

    h.store.digests.at = second_call_fails  # type: ignore[method-assign,assignment]
    await h.send.slash_command(f"rerun {events[2]['id']}", user="U0ALICE", channel=ALERTS)
    await wait_for(lambda: reruns(h) >= 1, timeout=10)
    await wait_for(lambda: calls >= 2, timeout=10)
    await wait_for(lambda: "by <@U0ALICE>" in blocks_text(current(h, digest)) or calls >= 3, timeout=10)
    shown = blocks_text(current(h, digest))
    assert all(f"storm-0{n}" in shown for n in range(1, 9)) and "Rerun all failed" in shown
    await watcher.stop()


async def test_failures_joining_a_deleted_digest_are_listed_in_a_new_one(harness: Harness) -> None:
    h = harness
    watcher, digest, _ = await storm(h, 6)
    h.slack.fail("chat.update", "message_not_found", times=None)  # someone deleted the noisy list
    h.sim.fail_burst(3, prefix="later")
    await watcher.poll_once()
    h.slack.clear_faults()
    later = [m for m in digests(h) if m.ts != digest.ts]
    assert len(later) == 1 and all(f"later-0{n}" in blocks_text(later[0]) for n in (1, 2, 3))
    assert "later-" not in blocks_text(current(h, digest))
    await watcher.stop()


async def test_failures_listed_again_behind_a_held_cursor_do_not_make_a_storm(harness: Harness) -> None:
    h = harness
    router = two_channels()
    watcher = h.runtime.watcher(router, timing=WatchTiming(30, 900), holder="test-watcher", digest_threshold=5)
    await watcher.poll_once()
    h.sim.fail_burst(1, prefix="inv", project="Inv")
    h.sim.fail_burst(3, prefix="pay", project="Pay")
    h.slack.fail("chat.postMessage", "fatal_error", times=1)  # OTHER's alert refused: the cursor waits there
    await watcher.poll_once()
    h.sim.fail_burst(1, prefix="new", project="Pay")
    await watcher.poll_once()  # the three Pay alerts are listed again, behind the cursor
    assert digests(h) == []  # 4 alerts in the window, not a storm of 5+
    assert len([m for m in top_level(h) if "pay-" in m.text or "new-" in m.text]) == 4
    await watcher.stop()


async def test_a_row_rerun_since_it_was_listed_is_not_run_again(harness: Harness) -> None:
    h = harness
    watcher, digest, events = await storm(h, 6)
    target = events[1]
    listed = int(str(target["executionIndex"]))
    h.sim.act_on_event("git", str(target["id"]), "Rerun", "someone-in-vra")  # rerun from the UI meanwhile
    h.sim.reset_requests()
    value = row_value("rerun", "git", str(target["id"]), listed)
    await h.send.block_action(ACTION_DIGEST_ROW, user="U0ALICE", channel=ALERTS, message_ts=digest.ts, option=value)
    said = await wait_for(lambda: [m for m in h.slack.messages(ALERTS) if "rerun since" in m.text], timeout=10)
    assert said and reruns(h) == 0
    await watcher.stop()


async def test_a_store_error_on_the_rows_update_still_follows_the_rerun_to_its_end(harness: Harness) -> None:
    h = harness
    watcher, digest, events = await storm(h, 6)
    first = events[0]
    # The row's state is written twice: "requested by" when claimed, and the outcome. The second
    # write meets a passing database error once.
    writes: list[int] = []

    def before_execute(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().upper().startswith("UPDATE DIGEST_ROWS"):
            writes.append(1)
            if len(writes) == 2:
                raise sqlite3.OperationalError("database is locked")

    sa_event.listen(h.store.statement_engine, "before_cursor_execute", before_execute)
    value = row_value("rerun", "git", str(first["id"]), int(str(first["executionIndex"])))
    await h.send.block_action(ACTION_DIGEST_ROW, user="U0ALICE", channel=ALERTS, message_ts=digest.ts, option=value)
    # Followed to its end all the same: the row says it was fixed, and nothing is left open.
    await wait_for(lambda: "Fixed by" in blocks_text(current(h, digest)), timeout=30)
    await wait_for_async(lambda: _no_open_followups(h), within=15)
    assert len(writes) >= 3  # the failed write was made again
    assert reruns(h) == 1
    await watcher.stop()
