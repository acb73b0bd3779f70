"""The follow-through (bot.core.followup), end to end on loopback: the Code Stream simulator, the Slack
stand-in and a real store (SQLite; PostgreSQL too when BOT_TEST_POSTGRES_URL is set).

Nothing sleeps to synchronise: tests wait on conditions with deadlines, and the budget tests
drive ``poll_once`` with an injected clock.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.codestream.auth import VraRefreshTokenProvider
from bot.codestream.client import CodeStreamClient
from bot.codestream.models import Event, GitEvent
from bot.core.followup import LEASE_NAME, FollowupTiming, FollowupTracker, PollBudget
from bot.core.leases import LeaseHolder
from bot.core.requests import ActionRequest, Actor, Outcome
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.simulator.cs_executions import DEFAULT_FAILURE
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.delivery import Delivery
from bot.slack.notifier import SlackNotifier
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.messages import SlackMessage
from bot.store import ActionRecord, FollowupRecord, Store, open_store
from tests.conftest import FAST_RETRY, Backend
from tests.harness import ALERTS, Harness, fast_pacing


def view(delivery: Delivery) -> SlackNotifier:
    """The follow-through's Slack side on a given delivery (links are the execution ids)."""
    return SlackNotifier(delivery, execution_link=lambda execution_id: execution_id)


T = TypeVar("T")
EXECUTIONS = "/codestream/api/executions/"
SUBJECT = "Fix rounding in invoice totals"  # the sample failed git event's commit subject
FAST = FollowupTiming(
    first_poll=0.05,
    initial_interval=0.05,
    max_interval=0.2,
    backoff=1.5,
    jitter=0.0,
    lease_ttl=5.0,
    idle=0.05,
    stop_grace=2.0,
)


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class RecordingDelivery(Delivery):
    """Records summary updates instead of calling Slack (budget tests only)."""

    def __init__(self) -> None:
        super().__init__(AsyncWebClient(token="xoxb-unused"))
        self.updates: list[tuple[str, str, SlackMessage]] = []

    async def update(self, channel: str, ts: str, message: SlackMessage, *, paced: bool = False) -> bool:
        self.updates.append((channel, ts, message))
        return True


async def eventually(probe: Callable[[], Awaitable[T | bool | None]], timeout: float = 10.0, what: str = "") -> T:  # noqa: ASYNC109
    """Await ``probe()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}; last value {value!r}")
        await asyncio.sleep(0.01)


def make_tracker(
    h: Harness,
    *,
    store: Store | None = None,
    holder: str = "replica-a",
    timing: FollowupTiming = FAST,
    budget: float = 50.0,
    max_hours: float = 6.0,
    clock: Callable[[], datetime] | None = None,
) -> FollowupTracker:
    runtime = h.runtime
    assert runtime.web is not None
    return FollowupTracker(
        store or runtime.store,
        runtime.client,
        runtime.notifier(),
        execution_url=h.settings.execution_ui_url,
        timing=replace(timing, max_hours=max_hours, poll_budget=budget),
        lease=LeaseHolder(holder),
        clock=clock,
    )


async def wire(h: Harness, tracker: FollowupTracker) -> None:
    """What serve.py does: the Slack handlers call ``runtime.followups.track(...)``. A tracker
    the bot started itself is stopped first (it would hold the lease with production timings)."""
    current = h.runtime.followups
    if current is not None and current is not tracker:
        await current.stop()
    h.bot.use_followups(tracker)


@asynccontextmanager
async def following(h: Harness | None, tracker: FollowupTracker) -> AsyncIterator[FollowupTracker]:
    """Run the tracker's loop (wired into the bot like serve.py will) for the block."""
    if h is not None:
        await wire(h, tracker)
    task = asyncio.create_task(tracker.run())
    try:
        yield tracker
    finally:
        await tracker.stop()
        await asyncio.gather(task, return_exceptions=True)


async def finished(store: Store, fid: int = 1) -> FollowupRecord | None:
    record = await store.followups.get(fid)
    return record if record is not None and record.finished_at is not None else None


async def rerun_from_alert(h: Harness, event_id: str = SAMPLE_FAILED_GIT_ID) -> tuple[Message, Message, FollowupRecord]:
    """Post the failure alert, press its Rerun button; return the alert, the summary posted in
    its thread and the tracker the bot stored (id 1: every test has a fresh database)."""
    alert = await h.post_alert("git", event_id)
    response = await h.send.block_action(ACTION_RERUN, channel=ALERTS, message_ts=alert.ts)
    assert response.status_code == 200

    def summary() -> Message | None:
        replies = [m for m in h.slack.thread(ALERTS, alert.ts) if m.ts != alert.ts and m.bot_id]
        return replies[0] if replies else None

    reply: Message = await wait_for(summary, 10.0, message="the summary in the alert's thread")
    record: FollowupRecord = await eventually(lambda: h.store.followups.get(1), what="the stored tracker")
    return alert, reply, record


def tracker_updates(h: Harness, ts: str, after: int = 0) -> int:
    """chat.update calls on message ``ts`` (failed ones included) among calls[after:]."""
    return sum(1 for c in h.slack.calls[after:] if c.method == "chat.update" and c.args.get("ts") == ts)


# --- the whole path: alert -> button -> summary -> updates -> resolved alert -----------------


async def test_rerun_from_an_alert_is_followed_to_completion(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0  # RUNNING until the test moves it on
    async with following(h, make_tracker(h)) as tracker:
        alert, summary, record = await rerun_from_alert(h)
        assert (record.channel_id, record.summary_ts) == (ALERTS, summary.ts)
        assert (record.alert_channel_id, record.alert_ts) == (ALERTS, alert.ts)
        assert record.status == "RUNNING" and record.actor_id == "U0ALICE"
        assert record.deadline_at - record.created_at == timedelta(hours=6)
        alert_versions = len(alert.history)
        calls_before = len(h.slack.calls)

        await wait_for(lambda: tracker.stats.polls >= 3, 10.0)
        assert summary.history == []  # RUNNING, as posted: nothing to update

        h.sim.set_execution_status(record.execution_id, "WAITING")
        await wait_for(lambda: "WAITING" in summary.text, 10.0)
        h.sim.set_execution_status(record.execution_id, "COMPLETED")
        done = await eventually(lambda: finished(h.store), what="the tracker to finish")

    assert done.status == "COMPLETED"
    assert len(summary.history) == 2  # WAITING, then COMPLETED: one update per status change
    assert tracker_updates(h, summary.ts, calls_before) == 2
    assert re.search(r"COMPLETED in \d+s", summary.text), summary.text
    assert SUBJECT in summary.text and "U0ALICE" in str(summary.blocks)
    # The alert: resolved once by the tracker, buttons gone.
    assert len(alert.history) == alert_versions + 1
    assert tracker_updates(h, alert.ts, calls_before) == 1
    assert "Fixed by rerun #7" in alert.text, alert.text
    assert "codestream_rerun" not in str(alert.blocks)
    assert tracker.stats.finished == 1 and tracker.stats.summary_updates == 2 and tracker.stats.alert_updates == 1
    # Fixed: the alert is resolved in the store, so the next failure of its series is a new alert.
    resolved = await h.store.alerts.find_by_message(alert.channel, alert.ts)
    assert resolved is not None and resolved.resolved_at is not None


async def test_a_rerun_that_fails_again_says_so_on_the_alert(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 0.3
    h.sim.next_final_status[SAMPLE_FAILED_GIT_ID] = "FAILED"
    async with following(h, make_tracker(h)):
        alert, summary, _ = await rerun_from_alert(h)
        done = await eventually(lambda: finished(h.store), what="the tracker to finish")
    assert done.status == "FAILED"
    assert len(summary.history) == 1
    assert re.search(r"FAILED in \d+s", summary.text), summary.text
    assert "Rerun #7 by <@U0ALICE> failed again (FAILED)" in alert.text, alert.text
    assert "codestream_rerun" in str(alert.blocks)  # the Rerun button is back
    open_alert = await h.store.alerts.find_by_message(alert.channel, alert.ts)
    assert open_alert is not None and open_alert.resolved_at is None  # failed again: still open


async def test_failed_again_says_which_stage_and_task_failed_and_why(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 0.3
    h.sim.next_final_status[SAMPLE_FAILED_GIT_ID] = "FAILED"  # its stages then show DEFAULT_FAILURE
    tracker = make_tracker(h)
    async with following(h, tracker):
        alert, summary, _ = await rerun_from_alert(h)
        await eventually(lambda: finished(h.store), what="the tracker to finish")
    stage, task, error = DEFAULT_FAILURE
    for message in (summary, alert):
        blocks = [str((block.get("text") or {}).get("text")) for block in message.blocks]
        assert any(f"*Failed at:* {stage} › {task}" in text for text in blocks), blocks
        assert any(f"```{error.splitlines()[0]}" in text for text in blocks), blocks
    assert f"failed at {stage} › {task}" in alert.text and f"failed at {stage} › {task}" in summary.text
    # The context comes from the tracker's own reads of the execution: no read of its own.
    assert h.sim.count("GET", "/codestream/api/executions/") == tracker.stats.polls


async def test_a_slash_command_rerun_without_an_alert_is_followed(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 0.3
    async with following(h, make_tracker(h)):
        await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", channel="C0OTHER")
        record: FollowupRecord = await eventually(lambda: h.store.followups.get(1), what="the stored tracker")
        assert record.alert_ts is None and record.channel_id == "C0OTHER"
        done = await eventually(lambda: finished(h.store), what="the tracker to finish")
    summary = h.slack.message("C0OTHER", record.summary_ts)
    assert summary is not None and "COMPLETED" in summary.text
    assert done.status == "COMPLETED"


# --- restarts and replicas --------------------------------------------------------------------


async def test_a_restarted_bot_resumes_tracking_from_the_store(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    slow_lease = replace(FAST, lease_ttl=60.0)  # only stop()'s release lets the new one in at once
    first = make_tracker(h, holder="old-process", timing=slow_lease)
    async with following(h, first):
        alert, summary, record = await rerun_from_alert(h)
        await wait_for(lambda: first.stats.polls >= 1, 10.0)
    assert await h.store.liveness.lease_holder(LEASE_NAME) is None  # stop() released it
    assert summary.history == []

    h.sim.set_execution_status(record.execution_id, "COMPLETED")
    store = await open_store(h.settings.bot_database_url)  # a new process: new engine, cold cache
    try:
        second = make_tracker(h, store=store, holder="new-process", timing=slow_lease)
        async with following(h, second):
            done = await eventually(lambda: finished(store), timeout=5.0, what="the new process to finish it")
    finally:
        await store.close()
    assert done.status == "COMPLETED"
    assert second.stats.event_reads == 1  # the Outcome was rebuilt: action row + one event read
    assert len(summary.history) == 1
    assert "COMPLETED" in summary.text and SUBJECT in summary.text and "U0ALICE" in str(summary.blocks)
    assert "Fixed by rerun #7" in alert.text


async def test_when_a_replica_dies_another_takes_over_after_the_lease_expires(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    short = replace(FAST, lease_ttl=1.0)
    dying = make_tracker(h, holder="dying", timing=short)
    await wire(h, dying)
    task = asyncio.create_task(dying.run())
    _, summary, record = await rerun_from_alert(h)
    await wait_for(lambda: dying.stats.polls >= 1, 10.0)
    task.cancel()  # killed: no stop(), the lease stays until it expires
    await asyncio.gather(task, return_exceptions=True)
    held = await h.store.liveness.lease_holder(LEASE_NAME)
    assert held is not None and held[0] == "dying"

    h.sim.set_execution_status(record.execution_id, "FAILED")
    store = await open_store(h.settings.bot_database_url)
    try:
        async with following(None, make_tracker(h, store=store, holder="survivor", timing=short)) as survivor:
            done = await eventually(lambda: finished(store), timeout=10.0, what="the survivor to finish it")
            assert survivor.is_leader
    finally:
        await store.close()
    assert done.status == "FAILED"
    assert "FAILED" in summary.text


async def test_two_replicas_update_each_status_change_once(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    timing = replace(FAST, lease_ttl=1.5)
    other_store = await open_store(h.settings.bot_database_url)
    try:
        a = make_tracker(h, holder="replica-a", timing=timing)
        b = make_tracker(h, store=other_store, holder="replica-b", timing=timing)
        async with following(h, a), following(None, b):
            alert, summary, record = await rerun_from_alert(h)
            calls_before = len(h.slack.calls)
            await wait_for(lambda: a.stats.polls + b.stats.polls >= 3, 10.0)
            assert min(a.stats.polls, b.stats.polls) == 0  # one replica polls at a time

            h.sim.set_execution_status(record.execution_id, "WAITING")
            await wait_for(lambda: "WAITING" in summary.text, 10.0)
            # The leader shuts down (a rolling deploy): the other one carries on.
            leader, standby = (a, b) if a.stats.polls else (b, a)
            await leader.stop()
            polls_before = standby.stats.polls
            await wait_for(lambda: standby.stats.polls > polls_before, 10.0)
            h.sim.set_execution_status(record.execution_id, "COMPLETED")
            done = await eventually(lambda: finished(h.store), what="the tracker to finish")
    finally:
        await other_store.close()
    assert done.status == "COMPLETED"
    assert tracker_updates(h, summary.ts, calls_before) == 2  # WAITING once, COMPLETED once
    assert tracker_updates(h, alert.ts, calls_before) == 1
    assert leader.stats.summary_updates == 1 and standby.stats.summary_updates == 1


# --- endings: give up, 404, transient errors, Slack failures -----------------------------------


async def test_a_tracker_gives_up_after_the_deadline_and_says_so(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    clock = FakeClock()
    tracker = make_tracker(h, clock=clock, max_hours=1.0)
    await wire(h, tracker)  # the test drives poll_once: no loop
    alert, summary, record = await rerun_from_alert(h)
    assert record.deadline_at == clock.now + timedelta(hours=1)
    alert_versions = len(alert.history)

    assert await tracker.poll_once(clock.advance(1)) == 1
    assert await tracker.poll_once(clock.advance(1)) == 1
    assert summary.history == []
    assert await tracker.poll_once(clock.advance(3600)) == 1
    done = await finished(h.store)
    assert done is not None and done.status == "RUNNING"
    assert "Gave up following after 1 h" in summary.text, summary.text
    assert await tracker.poll_once(clock.advance(3600)) == 0  # finished: never polled again
    assert len(alert.history) == alert_versions  # the alert keeps saying it is running
    assert tracker.stats.gave_up == 1


async def test_an_execution_that_vanished_ends_the_tracker_with_a_note(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    async with following(h, make_tracker(h)) as tracker:
        alert, summary, _ = await rerun_from_alert(h)
        alert_versions = len(alert.history)
        h.sim.inject(Fault(method="GET", path=EXECUTIONS, status=404))
        done = await eventually(lambda: finished(h.store), what="the tracker to finish")
    assert done.status == "NOT_FOUND"
    assert "no longer has this execution" in summary.text
    assert "Stopped following" in str(summary.blocks)
    assert len(alert.history) == alert_versions
    assert tracker.stats.not_found == 1


async def test_transient_errors_back_off_and_recover(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    async with following(h, make_tracker(h)) as tracker:
        alert, summary, record = await rerun_from_alert(h)
        await wait_for(lambda: tracker.stats.polls >= 1, 10.0)
        # The client itself retries each read 3 times (the harness's policy): two polls fail.
        fault = h.sim.inject(Fault(method="GET", path=EXECUTIONS, status=503, times=6))
        await wait_for(lambda: tracker.stats.poll_errors >= 2, 10.0)
        h.sim.set_execution_status(record.execution_id, "COMPLETED")
        done = await eventually(lambda: finished(h.store), what="the tracker to finish")
        assert tracker._run_task is not None and not tracker._run_task.done()  # the loop lived on
    assert fault.hits == 6
    assert done.status == "COMPLETED"
    assert "COMPLETED" in summary.text and "Fixed by rerun" in alert.text


async def test_rate_limits_are_honoured(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    clock = FakeClock()
    tracker = make_tracker(h, clock=clock, timing=FollowupTiming(jitter=0.0))
    await wire(h, tracker)
    await rerun_from_alert(h)
    h.sim.inject(Fault(method="GET", path=EXECUTIONS, status=429, headers={"Retry-After": "120"}, times=1))
    now = clock.advance(5)
    assert await tracker.poll_once(now) == 1
    record = await h.store.followups.get(1)
    assert record is not None and record.finished_at is None
    assert record.next_poll_at == now + timedelta(seconds=120)
    assert await tracker.poll_once(clock.advance(60)) == 0
    assert await tracker.poll_once(clock.advance(61)) == 1


async def test_a_failed_slack_update_is_logged_and_the_next_change_re_renders(harness: Harness) -> None:
    h = harness
    h.sim.execution_duration = 3600.0
    async with following(h, make_tracker(h)) as tracker:
        alert, summary, record = await rerun_from_alert(h)
        await wait_for(lambda: tracker.stats.polls >= 1, 10.0)
        h.slack.fail("chat.update", "internal_error", times=1)
        h.sim.set_execution_status(record.execution_id, "WAITING")
        await wait_for(lambda: tracker.stats.slack_failures == 1, 10.0)

        async def waiting_recorded() -> bool:
            current = await h.store.followups.get(1)
            return current is not None and current.status == "WAITING"

        await eventually(waiting_recorded, what="WAITING to be recorded despite Slack")
        assert summary.history == []
        h.sim.set_execution_status(record.execution_id, "COMPLETED")
        await eventually(lambda: finished(h.store), what="the tracker to finish")
    assert len(summary.history) == 1 and "COMPLETED" in summary.text
    assert "Fixed by rerun" in alert.text


async def test_track_ignores_an_outcome_without_a_new_execution(harness: Harness) -> None:
    tracker = make_tracker(harness)
    request = ActionRequest("rerun", "git", SAMPLE_FAILED_GIT_ID, Actor("U0ALICE"), "button")
    before: Event = GitEvent.model_validate({"id": SAMPLE_FAILED_GIT_ID, "executionLink": f"{EXECUTIONS}x"})
    # The POST went through but the event could not be read back: no execution URL, old event.
    outcome = Outcome(request, "started", event=before, execution_url=None, action_id=None)
    assert await tracker.track(outcome, channel=ALERTS, summary_ts="1.000001", alert=None) is None
    assert await harness.store.followups.active_count() == 0


# --- many trackers, one budget ------------------------------------------------------------------


@asynccontextmanager
async def loose_pieces(
    sim: CodeStreamSimulator, url: str, schema: str | None = None
) -> AsyncIterator[tuple[Store, CodeStreamClient]]:
    """A store and a Code Stream client, without a bot around them."""
    assert sim.base_url is not None
    store = await open_store(url, schema=schema)
    http = httpx.AsyncClient(timeout=5.0)
    client = CodeStreamClient(
        sim.base_url,
        VraRefreshTokenProvider(http, sim.base_url, SecretStr("sim-refresh-token")),
        http=http,
        retry=FAST_RETRY,
    )
    try:
        yield store, client
    finally:
        await client.aclose()
        await store.close()


async def add_trackers(
    store: Store,
    sim: CodeStreamSimulator,
    n: int,
    at: datetime,
    *,
    first_poll: float = 5.0,
    summary_ts: list[str] | None = None,
    action_id: int | None = None,
) -> list[str]:
    """``n`` RUNNING executions in the simulator, each with a stored tracker."""
    sim.execution_duration = 3600.0
    ids = [str(sim.add_execution(pipeline="bench-ci")["id"]) for _ in range(n)]
    for i, execution_id in enumerate(ids):
        await store.followups.add(
            FollowupRecord(
                execution_id=execution_id,
                kind="git",
                event_id=SAMPLE_FAILED_GIT_ID,
                action_id=action_id,
                channel_id=ALERTS,
                summary_ts=summary_ts[i] if summary_ts else f"1700000000.{i:06d}",
                status="RUNNING",
                next_poll_at=at + timedelta(seconds=first_poll),
                deadline_at=at + timedelta(hours=6),
                interval=5.0,
                created_at=at,
            )
        )
    return ids


async def test_500_trackers_are_polled_within_the_budget(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    clock = FakeClock()
    async with loose_pieces(sim, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}") as (store, client):
        await add_trackers(store, sim, 500, clock.now)
        delivery = RecordingDelivery()
        tracker = FollowupTracker(
            store,
            client,
            view(delivery),
            execution_url=str,
            timing=FollowupTiming(poll_budget=2.0),
            clock=clock,
            rng=random.Random(1),
        )
        sim.reset_requests()
        polled = 0
        for _ in range(480):  # two minutes in quarter seconds
            polled += await tracker.poll_once(clock.advance(0.25))
        await tracker.stop()
    gets = [r.path for r in sim.requests if r.method == "GET" and r.path.startswith(EXECUTIONS)]
    assert len(gets) == polled == tracker.stats.polls
    # Budget: 2 reads/s plus a burst of 2, whatever the number of trackers. Without it 500
    # trackers backing off 5 s -> 60 s would read about 3000 times in these two minutes.
    assert len(gets) <= 2 * 120 + 2
    assert len(gets) >= 2 * (120 - 5)  # and the budget is used: nothing is due before 5 s
    # Fair: the most overdue first, so nobody is polled twice before everyone was polled once.
    assert len(set(gets)) == len(gets)
    assert delivery.updates == []  # nothing changed, nothing re-rendered
    assert tracker.stats.lag_seconds > 60  # and it knows it is behind


async def test_polls_in_flight_are_bounded(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    clock = FakeClock()
    async with loose_pieces(sim, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}") as (store, client):
        await add_trackers(store, sim, 40, clock.now)
        timing = FollowupTiming(poll_budget=100.0)
        tracker = FollowupTracker(
            store, client, view(RecordingDelivery()), execution_url=str, timing=timing, clock=clock
        )
        assert await tracker.poll_once(clock.advance(10)) == 8  # the default concurrency
        await tracker.stop()


async def test_the_loop_keeps_to_the_budget_in_real_time(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    async with loose_pieces(sim, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}") as (store, client):
        await add_trackers(store, sim, 200, store.now(), first_poll=0.0)
        tracker = FollowupTracker(
            store, client, view(RecordingDelivery()), execution_url=str, timing=replace(FAST, poll_budget=20.0)
        )
        sim.reset_requests()
        started = time.monotonic()
        async with following(None, tracker):
            await wait_for(lambda: sim.count("GET", EXECUTIONS) >= 30, 10.0)
            elapsed = time.monotonic() - started
            gets = sim.count("GET", EXECUTIONS)
    # A burst of 20 (one second's worth), then 20 per second.
    assert gets <= 20 + 20 * elapsed + 1, (gets, elapsed)


def test_the_budget_refills_at_its_rate_and_pays_back_debt() -> None:
    budget = PollBudget(2.0)
    assert budget.available(100.0) == 2
    budget.take(100.0)
    budget.take(100.0)
    assert budget.available(100.0) == 0 and budget.wait_time(100.0) == pytest.approx(0.5)
    assert budget.available(100.5) == 1
    budget.take(100.5, 2)  # an extra event read: into debt
    assert budget.available(101.0) == 0 and budget.wait_time(101.0) == pytest.approx(0.5)
    assert budget.available(200.0) == 2  # never more than the burst


# --- two replicas on PostgreSQL (and SQLite) without a bot around them ---------------------------


async def test_replicas_share_trackers_through_the_database(sim: CodeStreamSimulator, backend: Backend) -> None:
    url, schema = backend.url, backend.schema
    async with (
        SlackStandIn() as slack,
        loose_pieces(sim, url, schema) as (store_a, client),
        loose_pieces(sim, url, schema) as (store_b, _),
    ):
        delivery = Delivery(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url), fast_pacing())
        summaries = [slack.post_bot_message(ALERTS, "summary") for _ in range(5)]
        action_id = await store_a.actions.record(
            ActionRecord(kind="git", event_id=SAMPLE_FAILED_GIT_ID, action="resume", actor_id="U0BOB", surface="slash")
        )
        execution_ids = await add_trackers(
            store_a, sim, 5, store_a.now(), first_poll=0.0, summary_ts=[m.ts for m in summaries], action_id=action_id
        )
        trackers = [
            FollowupTracker(
                store,
                client,
                view(delivery),
                execution_url=str,
                timing=replace(FAST, poll_budget=50.0),
                lease=LeaseHolder(name),
            )
            for store, name in ((store_a, "a"), (store_b, "b"))
        ]

        async def all_finished() -> bool:
            return await store_b.followups.active_count() == 0

        async with following(None, trackers[0]), following(None, trackers[1]):
            await wait_for(lambda: sum(t.stats.polls for t in trackers) >= 10, 10.0)
            for execution_id in execution_ids:
                sim.set_execution_status(execution_id, "COMPLETED")
            await eventually(all_finished, what="every tracker to finish")
    assert min(t.stats.polls for t in trackers) == 0  # one replica at a time
    assert sum(t.stats.summary_updates for t in trackers) == 5
    for summary in summaries:
        assert len(summary.history) == 1
        assert "COMPLETED" in summary.text and "Resume" in summary.text and "U0BOB" in str(summary.blocks)
