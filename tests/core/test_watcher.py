"""The watcher end to end: the Code Stream simulator and the Slack stand-in on loopback, the real
store (SQLite; PostgreSQL too when BOT_TEST_POSTGRES_URL is set). Cycles are driven with
``poll_once()``; the loop and the webhook are waited on with deadlines, never with sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette

from bot.app.runtime import Runtime, build_runtime
from bot.app.settings import load_settings
from bot.app.watching import WEBHOOK_HEADER, WEBHOOK_MAX_BODY, build_watcher, watch_enabled, webhook_route
from bot.codestream.models import EventKind
from bot.core.fileconfig import parse_file_config
from bot.core.routing import Router
from bot.core.watcher import LEASE, Cursor, CycleStats, Watcher, WatchTiming, backoff_delay
from bot.simulator import CodeStreamSimulator, Fault
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.delivery import Delivery
from bot.slack.render.buttons import ACTION_RERUN, ACTION_RESUME
from bot.slack.render.plaintext import blocks_to_text
from bot.store import ActionRecord, Store, open_store
from tests.conftest import FAST_RETRY, Backend
from tests.harness import ALERTS, BOT_TOKEN, Harness, bot_env, fast_pacing

OTHER = "C0OTHER"
LIST_PATHS: dict[EventKind, str] = {
    "git": "/codestream/api/git-events",
    "gerrit": "/codestream/api/gerrit-events",
    "docker": "/codestream/api/registry-events",
}


@dataclass
class World:
    sim: CodeStreamSimulator
    slack: SlackStandIn
    runtime: Runtime
    delivery: Delivery
    tmp_path: Path

    def watcher(
        self,
        router: Router | None = None,
        *,
        interval: float = 30.0,
        lookback: float = 900.0,
        page_size: int = 50,
        holder: str = "replica-a",
        **policy: Any,
    ) -> Watcher:
        timing = WatchTiming(interval, lookback, page_size)
        return self.runtime.watcher(
            router or Router(fallback=ALERTS), self.delivery, timing=timing, holder=holder, **policy
        )

    def alerts(self, channel: str = ALERTS) -> list[Message]:
        return [m for m in self.slack.messages(channel) if m.user == "U0BOT"]

    def lists(self, kind: EventKind) -> int:
        return sum(1 for r in self.sim.requests if r.method == "GET" and r.path == LIST_PATHS[kind])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    sim = CodeStreamSimulator(seed=False, execution_duration=60)
    await sim.start()
    slack = SlackStandIn(bot_token=BOT_TOKEN)
    await slack.start()
    runtime = await build_runtime(load_settings(bot_env(sim, slack, tmp_path)), retry=FAST_RETRY)
    # No retry handlers: a refused post is retried by the watcher's next cycle, which we drive.
    delivery = Delivery(AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url), fast_pacing())
    try:
        yield World(sim, slack, runtime, delivery, tmp_path)
    finally:
        await runtime.close()
        await slack.stop()
        await sim.stop()


def buttons(message: Message) -> set[str]:
    return {
        element.get("action_id", "")
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def micros_ago(seconds: float) -> int:
    return int((datetime.now(UTC) - timedelta(seconds=seconds)).timestamp() * 1_000_000)


async def cursor_of(store: Store, kind: EventKind) -> Cursor:
    text = await store.cursors.get(f"{LEASE}:{kind}")
    assert text is not None
    cursor = Cursor.load(text)
    assert cursor is not None
    return cursor


# --- one failure, one alert -----------------------------------------------------------------


async def test_failed_event_gets_exactly_one_alert_with_buttons(world: World) -> None:
    world.sim.add_event("git", executionStatus="COMPLETED", repo="ok-repo")
    failed = world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci")
    watcher = world.watcher()

    stats = await watcher.poll_once()

    [alert] = world.alerts()
    assert {ACTION_RERUN, ACTION_RESUME} <= buttons(alert)
    assert alert.metadata is not None and alert.metadata["event_payload"] == {"kind": "git", "id": failed["id"]}
    assert "payments-ci" in alert.text
    assert stats.alerts_posted == 1 and stats.kinds["git"].failures == 1 and stats.healthy
    record = await world.runtime.store.alerts.get("git", failed["id"], failed["executionIndex"])
    assert record is not None and (record.channel_id, record.ts) == (ALERTS, alert.ts)

    again = await watcher.poll_once()
    assert again.alerts_posted == 0 and again.kinds["git"].new == 0
    assert len(world.alerts()) == 1


async def test_cycles_and_alerts_are_counted_in_metrics(world: World) -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("codestream_bot_watcher_cycles_total", result="ok"),
        sample("codestream_bot_alerts_posted_total", kind="git"),
        sample("codestream_bot_watcher_cycles_total", result="skipped"),
    )
    world.sim.add_event("git", executionStatus="FAILED")
    await world.watcher().poll_once()
    await world.watcher(holder="standby").poll_once()
    after = (
        sample("codestream_bot_watcher_cycles_total", result="ok"),
        sample("codestream_bot_alerts_posted_total", kind="git"),
        sample("codestream_bot_watcher_cycles_total", result="skipped"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


async def test_trigger_failure_without_execution_is_alerted(world: World) -> None:
    event = world.sim.add_event("git", executionStatus=None, message="Webhook payload could not be parsed")
    assert "executionLink" not in event

    await world.watcher().poll_once()

    [alert] = world.alerts()
    assert "trigger failed" in alert.text or "trigger failed" in json.dumps(alert.blocks)
    record = await world.runtime.store.alerts.get("git", event["id"], None)
    assert record is not None and record.execution_index is None


@pytest.mark.parametrize("kind", ["gerrit", "docker"])
async def test_gerrit_and_registry_failures_are_alerted(world: World, kind: EventKind) -> None:
    event = world.sim.add_event(kind, executionStatus="CANCELED")
    stats = await world.watcher().poll_once()
    assert stats.kinds[kind].alerts == 1
    [alert] = world.alerts()
    assert alert.metadata is not None and alert.metadata["event_payload"] == {"kind": kind, "id": event["id"]}


async def test_a_restarted_watcher_on_the_same_database_posts_nothing_twice(world: World) -> None:
    for _ in range(3):
        world.sim.add_event("git", executionStatus="FAILED")
    first = world.watcher()
    await first.poll_once()
    assert len(world.alerts()) == 3
    await first.stop()  # shutting down releases the lease

    # A new process: a new runtime (engine) on the same SQLite file and a new Watcher.
    settings = load_settings(bot_env(world.sim, world.slack, world.tmp_path))
    runtime = await build_runtime(settings, retry=FAST_RETRY)
    try:
        restarted = runtime.watcher(Router(fallback=ALERTS), world.delivery, timing=WatchTiming(30, 900))
        stats = await restarted.poll_once()
        assert not stats.skipped and stats.kinds["git"].requests == 1 and stats.alerts_posted == 0
        await restarted.stop()
        # Even with the cursors lost, the alerts table keeps it exactly once.
        for kind in ("git", "gerrit", "docker"):
            await runtime.store.cursors.set(f"{LEASE}:{kind}", "garbage")
        stats = await runtime.watcher(Router(fallback=ALERTS), world.delivery, timing=WatchTiming(30, 900)).poll_once()
        assert stats.kinds["git"].failures == 3 and stats.alerts_posted == 0
    finally:
        await runtime.close()
    assert len(world.alerts()) == 3


async def test_history_older_than_the_lookback_is_not_alerted(world: World) -> None:
    old = micros_ago(3600)
    world.sim.add_event("git", executionStatus="FAILED", _createTimeInMicros=old, _updateTimeInMicros=old)
    recent = world.sim.add_event("git", executionStatus="FAILED")

    stats = await world.watcher(lookback=900).poll_once()

    [alert] = world.alerts()
    assert alert.metadata is not None and alert.metadata["event_payload"]["id"] == recent["id"]
    assert stats.alerts_posted == 1
    # The starting point is remembered: a restart an hour later does not move the window.
    assert (await cursor_of(world.runtime.store, "docker")).micros < micros_ago(800)


# --- Slack and Code Stream trouble ---------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"error": "internal_error", "status": 500},
        {"error": "ratelimited", "retry_after": 0},
        {"error": "fatal_error"},
    ],
    ids=["http-500", "ratelimited", "slack-error"],
)
async def test_slack_errors_delay_the_alert_and_hold_the_cursor(world: World, fault: dict[str, Any]) -> None:
    first = world.sim.add_event("git", executionStatus="FAILED")
    world.sim.add_event("git", executionStatus="COMPLETED")
    second = world.sim.add_event("git", executionStatus="FAILED")
    watcher = world.watcher()
    start = await watcher.poll_once()  # nothing to alert yet: only sets the cursors
    assert start.alerts_posted == 2
    third = world.sim.add_event("git", executionStatus="FAILED")
    world.sim.add_event("git", executionStatus="COMPLETED")
    world.slack.fail("chat.postMessage", times=2, **fault)

    for _ in range(2):
        stats = await watcher.poll_once()
        assert stats.alerts_posted == 0 and stats.kinds["git"].pending == 1
        assert not stats.healthy  # the loop backs off
        cursor = await cursor_of(world.runtime.store, "git")
        assert cursor.micros < third["_updateTimeInMicros"]  # not past the failure
        assert cursor.micros >= second["_updateTimeInMicros"]  # but past what was done

    stats = await watcher.poll_once()
    assert stats.alerts_posted == 1 and stats.healthy
    ids = [m.metadata["event_payload"]["id"] for m in world.alerts() if m.metadata]
    assert ids == [first["id"], second["id"], third["id"]]
    assert (await cursor_of(world.runtime.store, "git")).micros > third["_updateTimeInMicros"]
    assert (await watcher.poll_once()).alerts_posted == 0


async def test_one_refused_channel_does_not_block_the_others(world: World) -> None:
    router = Router(parse_file_config("routes:\n  - match: {pipeline: 'gone-*'}\n    channel: C0GONE\n").routes, ALERTS)
    stuck = world.sim.add_event("git", executionStatus="FAILED", pipeline="gone-ci")
    fine = world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci")
    watcher = world.watcher(router)
    watcher.undelivered.first_retry = 0  # retry at the next cycle (normally after a minute)

    stats = await watcher.poll_once()  # C0GONE does not exist: channel_not_found

    assert stats.alerts_posted == 1 and stats.kinds["git"].undeliverable == 1 and stats.healthy
    assert [m.metadata["event_payload"]["id"] for m in world.alerts() if m.metadata] == [fine["id"]]
    assert (await cursor_of(world.runtime.store, "git")).micros >= stuck["_updateTimeInMicros"]  # moved on
    world.slack.add_channel("C0GONE", "gone")
    assert (await watcher.poll_once()).reposted == 1
    assert len(world.alerts("C0GONE")) == 1 and len(world.alerts()) == 1
    assert (await watcher.poll_once()).reposted == 0  # posted once


@pytest.mark.parametrize("reason", ["not_in_channel", "channel_not_found", "is_archived", "restricted_action"])
async def test_a_channel_that_refuses_every_alert_holds_nothing_and_says_so(
    world: World, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.core.metrics import ALERTS_UNDELIVERABLE
    from bot.core.undelivered import describe_undelivered

    watcher = world.watcher()
    await watcher.poll_once()  # the cursor starts here
    before = ALERTS_UNDELIVERABLE.labels(ALERTS, reason)._value.get()
    world.slack.fail("chat.postMessage", error=reason, times=None)
    lists = []
    for _ in range(5):
        world.sim.add_event("git", executionStatus="FAILED")
        listed = world.lists("git")
        stats = await watcher.poll_once()
        lists.append(world.lists("git") - listed)
        assert stats.kinds["git"].pending == 0 and stats.kinds["git"].undeliverable == 1
    assert lists == [lists[0]] * 5  # flat: the cursor moves on (it grew 5 -> 21 before)
    assert ALERTS_UNDELIVERABLE.labels(ALERTS, reason)._value.get() - before == 5
    note = await describe_undelivered(world.runtime.store)
    assert note.startswith("5 alerts Slack refused") and f"{ALERTS} ({reason}:" in note
    warnings = [r for r in caplog.records if "alerts cannot be posted" in r.getMessage()]
    assert len(warnings) == 1  # once per channel per interval, not per alert
    if reason == "not_in_channel":
        assert "/invite @codestream-bot" in warnings[0].getMessage()
    # Slack takes them again: every kept alert is posted, once.
    world.slack.clear_faults()
    watcher.undelivered.first_retry = 0
    for held in await world.runtime.store.undelivered.due(world.runtime.store.now() + timedelta(hours=1)):
        await world.runtime.store.undelivered.hold(held.model_copy(update={"next_try_at": world.runtime.store.now()}))
    assert (await watcher.poll_once()).reposted == 5
    assert len(world.alerts()) == 5
    assert await describe_undelivered(world.runtime.store) == "ok"


async def test_code_stream_down_loses_nothing(world: World) -> None:
    watcher = world.watcher()
    await watcher.poll_once()
    event = world.sim.add_event("docker", executionStatus="FAILED")
    world.sim.inject(Fault(method="GET", path="-events$", status=503))

    stats = await watcher.poll_once()
    assert not stats.healthy and all(s.error and "Unavailable" in s.error for s in stats.kinds.values())
    assert world.alerts() == []

    world.sim.clear_faults()
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 1 and stats.healthy
    [alert] = world.alerts()
    assert alert.metadata is not None and alert.metadata["event_payload"]["id"] == event["id"]


async def test_an_alert_posted_but_not_recorded_is_recorded_later_not_posted_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = world.sim.add_event("git", executionStatus="FAILED")
    store = world.runtime.store
    real_save = store.alerts.save
    failures = iter([True])

    async def flaky_save(record: Any) -> bool:
        if next(failures, False):
            raise OSError("database went away")
        return await real_save(record)

    monkeypatch.setattr(store.alerts, "save", flaky_save)
    watcher = world.watcher()
    stats = await watcher.poll_once()
    assert stats.kinds["git"].error is not None and len(world.alerts()) == 1

    stats = await watcher.poll_once()
    assert stats.alerts_posted == 0 and stats.healthy
    assert len(world.alerts()) == 1
    assert await store.alerts.get("git", event["id"], event["executionIndex"]) is not None


async def test_a_rejected_filter_falls_back_to_plain_listing(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED")
    world.sim.inject(Fault(method="GET", path="/git-events$", status=400, times=1))
    watcher = world.watcher()

    stats = await watcher.poll_once()

    assert stats.alerts_posted == 1 and not watcher.use_filter
    last = [r for r in world.sim.requests if r.path == LIST_PATHS["git"]][-1]
    assert "$filter" not in last.query and last.query["$orderby"] == "updatedAt desc"


async def test_a_server_ignoring_orderby_and_skip_is_read_to_the_end_not_forever(world: World) -> None:
    docs = [world.sim.add_event("git", executionStatus=status) for status in ("FAILED", "COMPLETED")]
    links = [doc["_link"] for doc in docs]  # oldest first: not the order asked for
    body = {"count": 2, "totalCount": 1000, "links": links, "documents": dict(zip(links, docs, strict=True))}
    world.sim.inject(Fault(method="GET", path="/git-events$", status=200, body=body))

    stats = await world.watcher().poll_once()

    assert stats.kinds["git"].requests == 2 and stats.kinds["git"].alerts == 1


# --- reruns, ties, paging --------------------------------------------------------------------


async def test_a_rerun_that_failed_again_is_a_new_alert_in_the_first_alerts_thread(world: World) -> None:
    sim = world.sim
    event = sim.add_event("git", executionStatus="FAILED")
    watcher = world.watcher()
    await watcher.poll_once()
    [first] = world.alerts()

    for attempt in (1, 2):
        rerun = sim.act_on_event("git", event["id"], "Rerun", "alice")
        assert rerun["executionIndex"] == event["executionIndex"] + attempt
        assert (await watcher.poll_once()).alerts_posted == 0  # RUNNING is no failure
        sim.set_execution_status(rerun["executionLink"].rsplit("/", 1)[-1], "FAILED")
        stats = await watcher.poll_once()
        assert stats.alerts_posted == 1
        replies = [m for m in world.alerts() if m.is_reply]
        assert len(replies) == attempt and all(m.thread_ts == first.ts for m in replies)
        record = await world.runtime.store.alerts.get("git", event["id"], rerun["executionIndex"])
        assert record is not None and record.thread_ts == first.ts
    assert len(world.alerts()) == 3


async def test_events_sharing_one_update_time_are_each_alerted_once(world: World) -> None:
    tie = micros_ago(10)
    fields = {"executionStatus": "FAILED", "_createTimeInMicros": tie, "_updateTimeInMicros": tie}
    first = [world.sim.add_event("git", **fields)["id"] for _ in range(2)]
    watcher = world.watcher()
    assert (await watcher.poll_once()).alerts_posted == 2
    assert (await cursor_of(world.runtime.store, "git")) == Cursor(tie, frozenset(first))

    late = world.sim.add_event("git", **fields)  # same time, seen only now
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 1 and stats.kinds["git"].new == 1
    assert [m.metadata["event_payload"]["id"] for m in world.alerts() if m.metadata][-1] == late["id"]


@pytest.mark.parametrize("use_filter", [True, False], ids=["filtered", "server-ignores-filter"])
async def test_steady_state_costs_one_list_request_per_kind(world: World, use_filter: bool) -> None:
    world.sim.generate("git", 600, failed=6)
    world.sim.generate("gerrit", 120)
    watcher = world.watcher(lookback=86_400, page_size=50)
    watcher.use_filter = use_filter
    first = await watcher.poll_once()
    assert first.alerts_posted == 6
    assert first.kinds["git"].requests == 12  # 600 events in pages of 50

    for _ in range(3):
        before = {kind: world.lists(kind) for kind in LIST_PATHS}
        stats = await watcher.poll_once()
        assert {kind: world.lists(kind) - before[kind] for kind in LIST_PATHS} == {"git": 1, "gerrit": 1, "docker": 1}
        assert stats.requests == 3 and stats.alerts_posted == 0
    last = [r for r in world.sim.requests if r.path == LIST_PATHS["git"]][-1]
    assert last.query["$orderby"] == "updatedAt desc" and last.query["$top"] == "50"
    assert ("$filter" in last.query) is use_filter


@pytest.mark.parametrize("use_filter", [True, False], ids=["filtered", "unfiltered"])
async def test_new_events_are_paged_until_the_cursor_and_no_further(world: World, use_filter: bool) -> None:
    world.sim.generate("git", 400)
    watcher = world.watcher(page_size=50)
    watcher.use_filter = use_filter
    await watcher.poll_once()
    new = [world.sim.add_event("git", executionStatus="FAILED" if i % 40 == 0 else "COMPLETED") for i in range(120)]

    stats = await watcher.poll_once()

    assert stats.kinds["git"].new == 120 and stats.kinds["git"].alerts == 3
    assert stats.kinds["git"].requests == 3  # 120 new events: 3 pages of 50, then the cursor
    ids = [m.metadata["event_payload"]["id"] for m in world.alerts() if m.metadata]
    assert ids == [e["id"] for e in new if e["executionStatus"] == "FAILED"]  # oldest first


# --- routing ---------------------------------------------------------------------------------

ROUTES = """
routes:
  - match: {pipeline: "*-nightly"}
    drop: true
  - match: {kind: git, repo: [payments, "payments-*"], branch: "release/*"}
    channel: C0OTHER
    mention: "<!subteam^S0PAYOPS>"
  - match: {kind: [gerrit, docker]}
    channel: C0OTHER
    mention: U0ALICE
"""


async def test_alerts_follow_the_routing_rules(world: World) -> None:
    sim = world.sim
    router = Router(parse_file_config(ROUTES).routes, fallback=ALERTS)
    sim.add_event("git", executionStatus="FAILED", pipeline="build-nightly", repo="payments")
    paid = sim.add_event("git", executionStatus="FAILED", repo="payments-api", targetBranch="release/2.1")
    main = sim.add_event("git", executionStatus="FAILED", repo="payments", targetBranch="main")
    gerrit = sim.add_event("gerrit", executionStatus="FAILED")

    stats = await world.watcher(router).poll_once()

    assert stats.alerts_posted == 3 and stats.pending == 0
    routed = {m.metadata["event_payload"]["id"]: m for m in world.alerts(OTHER) if m.metadata}
    assert set(routed) == {paid["id"], gerrit["id"]}
    assert "<!subteam^S0PAYOPS>" in json.dumps(routed[paid["id"]].blocks)
    assert "<@U0ALICE>" in json.dumps(routed[gerrit["id"]].blocks)
    [fallback] = world.alerts(ALERTS)
    assert fallback.metadata is not None and fallback.metadata["event_payload"]["id"] == main["id"]


async def test_without_a_matching_rule_or_fallback_nothing_is_posted_and_nothing_is_held(world: World) -> None:
    router = Router(parse_file_config("routes:\n  - match: {project: Payments}\n    channel: C0OTHER\n").routes)
    event = world.sim.add_event("git", executionStatus="FAILED", project="Storefront")
    watcher = world.watcher(router)

    stats = await watcher.poll_once()

    assert stats.alerts_posted == 0 and stats.pending == 0 and stats.kinds["git"].failures == 1
    assert world.slack.calls_to("chat.postMessage") == []
    assert (await cursor_of(world.runtime.store, "git")).covers(event["_updateTimeInMicros"], event["id"])


async def test_kinds_that_can_only_be_dropped_are_not_polled(world: World) -> None:
    config = "routes:\n  - match: {kind: [gerrit, docker]}\n    drop: true\n  - channel: C0OTHER\n"
    watcher = world.watcher(Router(parse_file_config(config).routes))
    assert watcher.kinds == ("git",)
    stats = await watcher.poll_once()
    assert set(stats.kinds) == {"git"} and world.lists("gerrit") == world.lists("docker") == 0


# --- replicas ----------------------------------------------------------------------------------


async def test_only_the_lease_holder_polls(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED")
    a, b = world.watcher(holder="replica-a"), world.watcher(holder="replica-b")

    assert (await a.poll_once()).alerts_posted == 1
    before = len(world.sim.requests)
    skipped = await b.poll_once()
    assert skipped.skipped and skipped.requests == 0 and len(world.sim.requests) == before
    holder = await world.runtime.store.liveness.lease_holder(LEASE)
    assert holder is not None and holder[0] == "replica-a"

    await a.stop()  # releases the lease: b takes over at once
    assert not (await b.poll_once()).skipped
    assert len(world.alerts()) == 1


@pytest.fixture
async def two_stores(backend: Backend) -> AsyncIterator[tuple[Store, Store]]:
    """Two Store objects (two engines and pools) on one database."""
    first = await open_store(backend.url, schema=backend.schema)
    second = await open_store(backend.url, schema=backend.schema)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_two_replicas_polling_concurrently_post_one_alert_per_failure(
    world: World, two_stores: tuple[Store, Store]
) -> None:
    watchers = [
        dataclasses.replace(world.runtime, store=store).watcher(
            Router(fallback=ALERTS),
            world.delivery,
            timing=WatchTiming(30, 900),
            holder=f"replica-{n}",
        )
        for n, store in enumerate(two_stores)
    ]
    expected: list[str] = []
    for _ in range(3):
        expected += [world.sim.add_event("git", executionStatus="FAILED")["id"] for _ in range(5)]
        expected += [world.sim.add_event("docker", executionStatus="FAILED")["id"] for _ in range(2)]
        # force=True: both poll even though one holds the lease (what a webhook wake does);
        # only the claims stand between them and a double post.
        results: list[CycleStats] = await asyncio.gather(*(w.poll_once(force=True) for w in watchers))
        assert all(r.healthy for r in results)
    await asyncio.gather(*(w.poll_once(force=True) for w in watchers))  # anything left pending

    # Each failure shown once: alone, or as a row of a storm digest (15 git failures at once).
    metadata = [m.metadata for m in world.alerts() if m.metadata]
    posted = [meta["event_payload"]["id"] for meta in metadata if "id" in meta["event_payload"]]
    digests = [m for m in world.alerts() if (m.metadata or {}).get("event_type") == "codestream_digest"]
    row = re.compile(r'"rerun\|(?:git|docker)\|([0-9a-f-]{36})\|')
    posted += [event_id for m in digests for event_id in row.findall(json.dumps(m.blocks))]
    assert sorted(posted) == sorted(expected)
    # Without force, the replica without the lease skips the cycle.
    results = await asyncio.gather(*(w.poll_once() for w in watchers))
    assert sorted(r.skipped for r in results) == [False, True]


# --- the loop and the webhook ----------------------------------------------------------------


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff_delay(n, 30) for n in range(6)] == [30, 60, 120, 240, 300, 300]
    assert backoff_delay(3, 1) == 8 and backoff_delay(50, 1) == 300
    assert backoff_delay(2, 3600) == 3600  # never more often than the interval


@asynccontextmanager
async def looping(watcher: Watcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(watcher.run())
    try:
        yield task
    finally:
        await watcher.stop()
        assert task.done()


def hook_client(watcher: Watcher, token: str | None) -> httpx.AsyncClient:
    app = Starlette(routes=[webhook_route(watcher, SecretStr(token) if token else None)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot")


async def test_the_webhook_wakes_the_watcher_at_once(world: World) -> None:
    watcher = world.watcher(interval=3600)  # only a wake can make it poll again
    async with looping(watcher), hook_client(watcher, "s3cret-token") as client:
        await wait_for(lambda: world.lists("docker") >= 1, message="the first poll")
        event = world.sim.add_event("git", executionStatus="FAILED")
        polls = world.lists("git")
        replies = await asyncio.gather(
            *(client.post("/hooks/codestream", headers={WEBHOOK_HEADER: "s3cret-token"}, json={}) for _ in range(10))
        )
        assert {r.status_code for r in replies} == {202}
        [alert] = await wait_for(lambda: world.alerts(), timeout=5, message="the woken alert")
        assert alert.metadata is not None and alert.metadata["event_payload"]["id"] == event["id"]
        assert world.lists("git") - polls <= 2  # ten wakes coalesce


@pytest.mark.parametrize(
    ("token", "headers", "body", "status"),
    [
        ("s3cret-token", {}, b"{}", 401),
        ("s3cret-token", {WEBHOOK_HEADER: "wrong"}, b"{}", 401),
        ("s3cret-token", {WEBHOOK_HEADER: "s3cret-token-and-more"}, b"{}", 401),
        (None, {WEBHOOK_HEADER: "anything"}, b"{}", 404),
        ("s3cret-token", {WEBHOOK_HEADER: "s3cret-token"}, b"x" * (WEBHOOK_MAX_BODY + 1), 413),
        ("s3cret-token", {WEBHOOK_HEADER: "s3cret-token"}, b"x" * WEBHOOK_MAX_BODY, 202),
    ],
    ids=["missing-token", "wrong-token", "longer-token", "not-configured", "oversize", "at-the-cap"],
)
async def test_the_webhook_checks_token_and_size(
    world: World, token: str | None, headers: dict[str, str], body: bytes, status: int
) -> None:
    watcher = world.watcher()
    async with hook_client(watcher, token) as client:
        reply = await client.post("/hooks/codestream", headers=headers, content=body)
    assert reply.status_code == status
    assert watcher._wake.is_set() is (status == 202)


async def test_the_webhook_refuses_an_oversize_body_without_content_length(world: World) -> None:
    watcher = world.watcher()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    async with hook_client(watcher, "s3cret-token") as client:
        reply = await client.post("/hooks/codestream", headers={WEBHOOK_HEADER: "s3cret-token"}, content=chunks())
    assert reply.status_code == 413 and not watcher._wake.is_set()


async def test_the_loop_backs_off_logs_one_line_per_failed_cycle_and_recovers(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    event = world.sim.add_event("gerrit", executionStatus="FAILED")
    # Two whole cycles fail: 3 kinds x 4 tries (the client's own retries) each.
    world.sim.inject(Fault(method="GET", path="-events$", status=503, times=2 * 3 * FAST_RETRY.attempts))
    watcher = world.watcher(interval=0.05)
    with caplog.at_level("WARNING", logger="bot.core.watcher"):
        async with looping(watcher):
            [alert] = await wait_for(lambda: world.alerts(), timeout=10, message="the alert after the outage")
    assert alert.metadata is not None and alert.metadata["event_payload"]["id"] == event["id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.core.watcher"]
    assert len(lines) == 2 and all(line.startswith("watcher: cycle incomplete") for line in lines)
    assert "gerrit: Unavailable" in lines[0]


async def test_stop_ends_the_loop_and_releases_the_lease(world: World) -> None:
    watcher = world.watcher(interval=3600)
    async with looping(watcher) as task:
        await wait_for(lambda: world.lists("docker") >= 1, message="the first poll")
        assert await world.runtime.store.liveness.lease_holder(LEASE) is not None
    assert task.done() and not task.cancelled()
    assert await world.runtime.store.liveness.lease_holder(LEASE) is None


# --- alerts from the watcher work like any alert ------------------------------------------------


async def test_buttons_on_a_watcher_alert_rerun_the_event(harness: Harness) -> None:
    from bot.simulator import SAMPLE_FAILED_GIT_ID

    delivery = Delivery(AsyncWebClient(token=BOT_TOKEN, base_url=harness.slack.api_url), fast_pacing())
    watcher = harness.runtime.watcher(Router(fallback=ALERTS), delivery, timing=WatchTiming(30, 3600), holder="w")
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 4  # the seeded git, trigger, Gerrit and registry failures

    [alert] = [
        m
        for m in harness.slack.messages(ALERTS)
        if (m.metadata or {}).get("event_payload", {}).get("id") == SAMPLE_FAILED_GIT_ID
    ]
    [rerun] = [
        e for b in alert.blocks if b.get("type") == "actions" for e in b["elements"] if e["action_id"] == ACTION_RERUN
    ]
    reply = await harness.send.block_action(ACTION_RERUN, rerun["value"], channel=ALERTS, message_ts=alert.ts)
    assert reply.status_code == 200
    await wait_for(lambda: harness.posts() == 1, message="the rerun POST to Code Stream")
    [post] = [r for r in harness.sim.requests if r.method == "POST" and r.path.startswith("/codestream/api/")]
    assert post.path.endswith(SAMPLE_FAILED_GIT_ID) and post.query["action"] == "Rerun"


# --- enabling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "routes", "enabled"),
    [
        ({}, "", False),
        ({"BOT_ALERT_CHANNEL": ALERTS}, "", True),
        ({}, "routes:\n  - channel: C0OTHER\n", True),
        ({}, "routes:\n  - drop: true\n", False),
        ({"BOT_ALERT_CHANNEL": ALERTS, "BOT_WATCH": "false"}, "", False),
        ({"BOT_WATCH": "true"}, "", True),
        # With Slack, channels may subscribe: on, unless the file's rules take every failure.
        ({"SLACK_BOT_TOKEN": "xoxb-x"}, "", True),
        ({"SLACK_BOT_TOKEN": "xoxb-x"}, "routes:\n  - drop: true\n", False),
        ({"SLACK_BOT_TOKEN": "xoxb-x"}, "routes:\n  - match: {kind: git}\n    drop: true\n", True),
        ({"SLACK_BOT_TOKEN": "xoxb-x", "BOT_WATCH": "false"}, "", False),
    ],
)
def test_watch_enabled(env: dict[str, str], routes: str, enabled: bool) -> None:
    assert watch_enabled(load_settings(env), parse_file_config(routes)) is enabled


async def test_build_watcher_follows_the_settings(world: World, tmp_path: Path) -> None:
    def pieces(runtime: Runtime) -> dict[str, Any]:
        notifier = runtime.notifier(world.delivery)
        return {"store": runtime.store, "client": runtime.client, "notifier": notifier, "holder": runtime.replica}

    # Slack is configured: channels may subscribe at any time, so the watcher runs, idle, until a
    # route exists (BOT_WATCH=false turns it off).
    idle = build_watcher(world.runtime.settings, parse_file_config(""), **pieces(world.runtime))
    assert idle is not None and idle.kinds == ()
    stats = await idle.poll_once()
    assert stats.skipped and await world.runtime.store.liveness.lease_holder("watcher") is None  # no lease, no reads
    off = world.runtime.settings.model_copy(update={"bot_watch": False})
    assert build_watcher(off, parse_file_config(""), **pieces(world.runtime)) is None
    settings = load_settings(
        bot_env(
            world.sim, world.slack, tmp_path, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="7", BOT_WATCH_LOOKBACK="60"
        )
    )
    watcher = build_watcher(settings, parse_file_config(""), **pieces(world.runtime))
    assert watcher is not None
    assert (watcher.interval, watcher.lookback, watcher.lease_ttl, watcher.router.fallback) == (7, 60, 21, ALERTS)


async def test_an_oversized_list_is_a_clear_error_and_the_next_cycle_carries_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = world.watcher()
    await watcher.poll_once()
    # The watcher reads on the client's background pool.
    world.runtime.client.background.max_response_bytes = 256 * 1024
    documents = {f"/codestream/api/git-events/{i}": {"id": str(i), "name": "x" * 200} for i in range(5000)}
    body = {"count": len(documents), "links": list(documents), "documents": documents}
    world.sim.inject(Fault(method="GET", path="/codestream/api/git-events", status=200, body=body, times=1))
    stats = await watcher.poll_once()
    assert stats.kinds["git"].error is not None and "larger than 0 MB" not in stats.kinds["git"].error
    assert any("CODESTREAM_MAX_RESPONSE_MB" in r.getMessage() for r in caplog.records)
    event = world.sim.add_event("git", executionStatus="FAILED")
    stats = await watcher.poll_once()
    assert stats.kinds["git"].error is None and stats.alerts_posted == 1
    assert [m.metadata["event_payload"]["id"] for m in world.alerts() if m.metadata] == [event["id"]]


async def test_a_kept_alert_whose_failure_was_rerun_meanwhile_is_not_posted(world: World) -> None:
    watcher = world.watcher()
    watcher.undelivered.first_retry = 0
    await watcher.poll_once()
    world.slack.fail("chat.postMessage", error="not_in_channel", times=None)
    event = world.sim.add_event("git", executionStatus="FAILED")
    assert (await watcher.poll_once()).kinds["git"].undeliverable == 1
    world.slack.clear_faults()
    world.sim.act_on_event("git", event["id"], "Rerun", "someone")  # a new execution, not this failure
    stats = await watcher.poll_once()
    assert stats.reposted == 0
    assert [m for m in world.alerts() if m.metadata and m.metadata["event_payload"]["id"] == event["id"]] == []
    assert await world.runtime.store.undelivered.due(world.runtime.store.now()) == []


# --- why it failed ------------------------------------------------------------------------------

EXECUTION_READS = "/codestream/api/executions/"


async def test_the_alert_says_which_stage_and_task_failed_and_why(world: World) -> None:
    failed = world.sim.add_event("git", executionStatus="FAILED")
    execution_id = failed["executionLink"].rsplit("/", 1)[-1]
    world.sim.set_failure(execution_id, "Deploy", "helm-upgrade", "Error: UPGRADE FAILED: timed out\nsecond line")
    watcher = world.watcher()
    stats = await watcher.poll_once()
    [alert] = world.alerts()
    assert "Failed at: Deploy › helm-upgrade" in blocks_to_text(alert.blocks).replace("*", "")
    texts = [str((block.get("text") or {}).get("text")) for block in alert.blocks]
    assert any("```Error: UPGRADE FAILED: timed out\nsecond line```" in text for text in texts), texts
    assert stats.detail_reads == 1 and world.sim.count("GET", EXECUTION_READS) == 1
    # Steady state: nothing new, nothing read again.
    for _ in range(3):
        assert (await watcher.poll_once()).detail_reads == 0
    assert world.sim.count("GET", EXECUTION_READS) == 1


async def test_without_readable_details_the_alert_is_posted_as_before(world: World) -> None:
    world.sim.inject(Fault(method="GET", path=EXECUTION_READS, status=503, times=None))
    world.sim.add_event("git", executionStatus="FAILED")
    stats = await world.watcher().poll_once()
    [alert] = world.alerts()
    assert stats.alerts_posted == 1 and "Failed at" not in blocks_to_text(alert.blocks)
    assert buttons(alert) >= {ACTION_RERUN, ACTION_RESUME}


async def test_a_trigger_failure_reads_no_execution_and_shows_the_events_message(world: World) -> None:
    world.sim.add_event("git", executionStatus=None, message="Webhook payload could not be parsed")
    await world.watcher().poll_once()
    [alert] = world.alerts()
    assert "Webhook payload could not be parsed" in blocks_to_text(alert.blocks)
    assert world.sim.count("GET", EXECUTION_READS) == 0


# --- repeated failures stay in one place -------------------------------------------------------


def top_level(world: World) -> list[Message]:
    return [m for m in world.alerts() if m.thread_ts is None]


async def test_another_failure_of_the_same_pipeline_and_branch_goes_in_the_first_alerts_thread(
    world: World,
) -> None:
    first = world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    watcher = world.watcher()
    await watcher.poll_once()
    [root] = top_level(world)
    second = world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 1 and stats.kinds["git"].repeats == 1
    assert top_level(world) == [world.slack.message(ALERTS, root.ts)]  # still one top-level alert
    [repeat] = [m for m in world.alerts() if m.thread_ts == root.ts]
    execution_index = second["executionIndex"]
    assert repeat.text.startswith(f"🔁 failed again: payments-ci #{execution_index}, Test › unit")
    assert repeat.metadata is not None and repeat.metadata["event_payload"]["id"] == second["id"]
    assert buttons(repeat) >= {ACTION_RERUN, ACTION_RESUME}  # its own buttons act on its own event
    # The first alert's header counts them (updated in place).
    updated = world.slack.message(ALERTS, root.ts)
    assert updated is not None and "payments-ci failed · 2 failures" in json.dumps(updated.blocks, ensure_ascii=False)
    assert updated.metadata is not None and updated.metadata["event_payload"]["id"] == first["id"]
    # Its buttons would rerun the oldest commit: the newest failure, in the thread, is acted on.
    assert not buttons(updated) & {ACTION_RERUN, ACTION_RESUME}
    assert "rerun or resume the newest one there" in json.dumps(updated.blocks, ensure_ascii=False)
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await watcher.poll_once()
    updated = world.slack.message(ALERTS, root.ts)
    assert updated is not None and "· 3 failures" in json.dumps(updated.blocks, ensure_ascii=False)
    assert len(top_level(world)) == 1 and len(world.alerts()) == 3
    record = await world.runtime.store.alerts.get("git", first["id"], first["executionIndex"])
    assert record is not None and record.repeats == 2


async def test_another_branch_or_pipeline_is_its_own_alert(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="release/2")
    world.sim.add_event("git", executionStatus="FAILED", pipeline="billing-ci", targetBranch="main")
    await world.watcher().poll_once()
    assert len(top_level(world)) == 3


async def test_a_resolved_alert_or_no_window_means_a_new_alert(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await world.watcher().poll_once()
    [root] = top_level(world)
    assert await world.runtime.store.alerts.resolve(ALERTS, root.ts, world.runtime.store.now()) == 1  # a fix
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await world.watcher().poll_once()
    assert len(top_level(world)) == 2
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await world.watcher(repeat_window=0).poll_once()  # BOT_REPEAT_WINDOW_HOURS=0: every failure alone
    assert len(top_level(world)) == 3


async def test_a_series_alert_someone_acted_on_is_not_redrawn(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    watcher = world.watcher()
    await watcher.poll_once()
    [root] = top_level(world)
    before = world.slack.message(ALERTS, root.ts)
    assert before is not None
    await world.runtime.store.actions.record(
        ActionRecord(
            kind="git",
            event_id="x",
            action="rerun",
            actor_id="U0ALICE",
            surface="button",
            alert_channel=ALERTS,
            alert_ts=root.ts,
        )
    )
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await watcher.poll_once()
    after = world.slack.message(ALERTS, root.ts)
    assert after is not None and after.blocks == before.blocks  # its "requested by" line stays
    assert [m for m in world.alerts() if m.thread_ts == root.ts]  # the repeat is in the thread all the same


async def test_a_repeat_routed_elsewhere_now_is_a_new_alert_there(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await world.watcher().poll_once()
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await world.watcher(Router(fallback=OTHER)).poll_once()  # the routing changed meanwhile
    assert len(top_level(world)) == 1
    other = [m for m in world.slack.messages(OTHER) if m.user == "U0BOT"]
    assert len(other) == 1 and other[0].thread_ts is None


async def test_a_passing_run_resolves_the_series(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    watcher = world.watcher()
    await watcher.poll_once()
    world.sim.add_event("git", executionStatus="COMPLETED", pipeline="payments-ci", targetBranch="main")  # a fix
    await watcher.poll_once()
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await watcher.poll_once()
    assert len(top_level(world)) == 2  # broken again after the fix: a new alert, which pages again


async def test_a_reply_in_a_series_thread_acts_on_its_newest_failure(world: World) -> None:
    world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    watcher = world.watcher()
    await watcher.poll_once()
    [root] = top_level(world)
    newest = world.sim.add_event("git", executionStatus="FAILED", pipeline="payments-ci", targetBranch="main")
    await watcher.poll_once()
    record = await world.runtime.store.alerts.newest_in_thread(ALERTS, root.ts)
    assert record is not None and record.event_id == newest["id"]


async def test_a_kind_a_first_subscription_makes_polled_starts_from_the_lookback_window(world: World) -> None:
    """Nothing routed: the watcher idles (no lease, no list). A subscription makes git polled from
    the next cycle — from the lookback window, not from a day-old cursor left by an earlier route,
    so the failures of the time nobody subscribed are not posted late."""
    from bot.core.watcher.cursor import micros_now
    from bot.store import SubscriptionRecord

    world.slack.add_channel("C0PAY", "payments")
    store = world.runtime.store
    watcher = world.watcher(Router(), lookback=60)
    now = micros_now()
    world.sim.add_event(
        "git",
        executionStatus="FAILED",
        project="Payments",
        _createTimeInMicros=now - 900_000_000,
        _updateTimeInMicros=now - 600_000_000,
    )
    await store.cursors.set("watcher:git", Cursor(now - 86_400_000_000).dump())
    assert (await watcher.poll_once()).skipped and world.lists("git") == 0
    assert await store.liveness.lease_holder(LEASE) is None
    await store.subscriptions.add(SubscriptionRecord(channel_id="C0PAY", kind="git", created_by="U0ALICE"))
    new = world.sim.add_event("git", executionStatus="FAILED", project="Payments")
    stats = await watcher.poll_once()
    assert watcher.kinds == ("git",) and stats.alerts_posted == 1
    [alert] = world.alerts("C0PAY")
    assert (alert.metadata or {}).get("event_payload", {}).get("id") == new["id"]
    await watcher.stop()
