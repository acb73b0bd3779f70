"""PostgreSQL restarted under the bot (every connection reset, new ones reset too, then back):
readiness says so, a click meanwhile is told nothing was sent (and nothing is), an action whose
POST was in flight is settled by reading it back once the database returns, and afterwards every
intent sent matches one POST and one audit row. The database is the test's own, behind a port
that can drop it (``tests/dbdoor.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.messages import METADATA_EVENT_TYPE
from bot.store import open_store
from tests.conftest import POSTGRES_URL, needs_postgres
from tests.dbdoor import AppearingDatabase, appearing
from tests.harness import ALERTS, BOT_TOKEN, Harness, buttons, everything, running_harness
from tests.replicas import finish, fresh_database, ready, replica_env, start_replica

pytestmark = [needs_postgres, pytest.mark.slow]
GIT_EVENTS = "/codestream/api/git-events/"


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[tuple[Harness, AppearingDatabase, str]]:
    async with fresh_database() as database_url, appearing(database_url) as (door, behind_door):
        await door.open()
        async with running_harness(tmp_path, BOT_DATABASE_URL=behind_door) as h:
            yield h, door, database_url


async def click_rerun(h: Harness, alert: Message, user: str = "U0ALICE") -> None:
    resp = await h.send.block_action(
        ACTION_RERUN, buttons(alert)[ACTION_RERUN]["value"], user=user, channel=ALERTS, message_ts=alert.ts
    )
    assert resp.status_code == 200


def summaries(h: Harness, alert: Message) -> list[Message]:
    return [m for m in h.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"]


async def connections(database_url: str) -> int:
    admin = await asyncpg.connect(str(POSTGRES_URL).replace("postgresql+asyncpg://", "postgresql://"))
    try:
        name = database_url.rpartition("/")[2]
        return int(await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name))
    finally:
        await admin.close()


async def test_a_database_restart_loses_nothing_and_runs_nothing_twice(
    outage: tuple[Harness, AppearingDatabase, str], caplog: pytest.LogCaptureFixture
) -> None:
    h, door, database_url = outage
    events = [SAMPLE_FAILED_GIT_ID] + [
        h.sim.add_event("git", pipeline=f"svc-{n}-ci", project="Payments", executionStatus="FAILED")["id"]
        for n in range(2)
    ]
    first, during, in_flight = [await h.post_alert("git", event_id) for event_id in events]
    await click_rerun(h, first)
    await wait_for(lambda: summaries(h, first) or None, timeout=10)
    before = await connections(database_url)

    # A rerun whose POST is on its way when the database goes: Code Stream runs it, slowly.
    h.sim.inject(Fault(method="POST", path=f"{GIT_EVENTS}{events[2]}$", delay=1.0, after_processing=True))
    await click_rerun(h, in_flight)
    await wait_for(lambda: h.sim.count("POST", f"{GIT_EVENTS}{events[2]}") == 1 or None, timeout=10)
    door.down()
    async with httpx.AsyncClient(base_url=str(h.bot.url), timeout=10) as http:
        readyz = await wait_for_async_status(http, 503)
        assert "unreachable" in readyz["database"], readyz
        # A click meanwhile: told (in the alert's thread) that nothing was sent, and nothing is.
        await click_rerun(h, during, user="U0BOB")
        [told] = await wait_for(lambda: summaries(h, during) or None, timeout=15)
        assert "nothing was sent to Code Stream" in everything(told), everything(told)
        assert h.sim.count("POST", f"{GIT_EVENTS}{events[1]}") == 0
        back = time.monotonic()
        door.up()
        await wait_for_async_status(http, 200)
        to_ready = time.monotonic() - back
    # After: the click works once; the in-flight rerun is settled as started by reading it back.
    await click_rerun(h, during, user="U0BOB")
    await wait_for(lambda: len(summaries(h, during)) == 2 or None, timeout=15)

    async def settled() -> bool:
        rows = [r for r in await h.store.actions.list(limit=100) if r.event_id == events[2]]
        return any(r.status == "started" for r in rows)

    deadline = time.monotonic() + 30
    while not await settled():
        assert time.monotonic() < deadline, "the in-flight rerun was never settled"
        await asyncio.sleep(0.2)
    rows = await h.store.actions.list(limit=100)
    posts = {e: h.sim.count("POST", f"{GIT_EVENTS}{e}") for e in events}
    started = {e: sum(1 for r in rows if r.event_id == e and r.status == "started") for e in events}
    assert posts == started == dict.fromkeys(events, 1), (posts, started, [(r.event_id, r.status) for r in rows])
    # The loops say the database is away in one line a round, not a traceback each.
    loops = ("bot.core.reconcile", "bot.core.followup", "bot.core.watcher")
    assert not [r for r in caplog.records if r.name in loops and r.levelname == "ERROR"], [
        r.getMessage() for r in caplog.records if r.name in loops and r.levelname == "ERROR"
    ]
    after = await connections(database_url)
    assert after <= max(before, 1) + 2, (before, after)  # the pool reconnected, nothing leaked
    print(json.dumps({"to_ready_s": round(to_ready, 2), "connections": [before, after], "posts": sum(posts.values())}))


async def wait_for_async_status(http: httpx.AsyncClient, status: int, within: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + within
    while True:
        response = await http.get("/readyz?local=1")
        if response.status_code == status:
            return dict(response.json())
        assert time.monotonic() < deadline, f"/readyz never {status}: {response.text}"
        await asyncio.sleep(0.1)


def refused_clicks(slack: SlackStandIn, sim: CodeStreamSimulator, events: list[str]) -> list[str] | None:
    """The events with no rerun sent, once each of them shows its answer in the alert's thread
    ("nothing was sent"); None while an answer is still missing."""
    unsent = [e for e in events if sim.count("POST", f"{GIT_EVENTS}{e}") == 0]
    threads = {
        (m.metadata or {}).get("event_payload", {}).get("id"): m.ts for m in slack.messages(ALERTS) if not m.thread_ts
    }
    for event_id in unsent:
        replies = slack.thread(ALERTS, threads[event_id])[1:] if event_id in threads else []
        if not any("nothing was sent to Code Stream" in everything(r) for r in replies):
            return None
    return unsent


def alerts_by_event(slack: SlackStandIn) -> dict[str, int]:
    found: dict[str, int] = {}
    for message in slack.messages(ALERTS):
        meta = message.metadata or {}
        if message.user == "U0BOT" and meta.get("event_type") == METADATA_EVENT_TYPE and not message.thread_ts:
            event_id = meta["event_payload"]["id"]
            found[event_id] = found.get(event_id, 0) + 1
    return found


async def test_two_replicas_under_a_steady_stream_through_a_database_restart(tmp_path: Path) -> None:
    async with (
        fresh_database() as database_url,
        appearing(database_url) as (door, behind_door),
        CodeStreamSimulator(execution_duration=1.0) as sim,
        SlackStandIn(bot_token=BOT_TOKEN) as slack,
    ):
        await door.open()
        env = replica_env(
            sim,
            slack,
            tmp_path,
            BOT_DATABASE_URL=behind_door,
            BOT_ALERT_CHANNEL=ALERTS,
            BOT_WATCH_INTERVAL="1",
            BOT_WATCH_LOOKBACK="86400",
            BOT_DIGEST_THRESHOLD="0",
        )
        replicas = [await ready(await start_replica(name, env, tmp_path), slack) for name in ("a", "b")]
        clicked: dict[str, tuple[str, str]] = {}  # event id -> the Rerun button's value, the alert's ts

        def fail(n: int, first: int) -> list[str]:
            """New failures of ``n`` pipelines of their own (a pipeline's repeat joins its alert)."""
            return [
                sim.add_event("git", pipeline=f"svc-{i}-ci", project="Payments", executionStatus="FAILED")["id"]
                for i in range(first, first + n)
            ]

        async def click(turn: int, event_id: str) -> None:
            sender = replicas[turn % 2].send
            assert sender is not None
            value, ts = clicked[event_id]
            with contextlib.suppress(httpx.HTTPError):
                await sender.block_action(ACTION_RERUN, value, channel=ALERTS, message_ts=ts)

        async def click_new_alerts() -> None:
            """The stream: every alert gets one Rerun click, on alternating replicas."""
            turn = 0
            while True:
                for message in list(slack.messages(ALERTS)):
                    meta = message.metadata or {}
                    if message.user != "U0BOT" or meta.get("event_type") != METADATA_EVENT_TYPE or message.thread_ts:
                        continue
                    event_id = meta["event_payload"]["id"]
                    if event_id in clicked or ACTION_RERUN not in buttons(message):
                        continue
                    clicked[event_id] = (buttons(message)[ACTION_RERUN]["value"], message.ts)
                    await click(turn, event_id)
                    turn += 1
                await asyncio.sleep(0.1)

        before = fail(5, 0)
        stream = asyncio.create_task(click_new_alerts())
        try:
            await wait_for(lambda: set(before) <= set(clicked) or None, timeout=30)
            door.down()
            during = fail(5, 5)  # failures while the database is away: alerted once it is back
            async with httpx.AsyncClient(timeout=5) as http:
                for replica in replicas:
                    deadline = time.monotonic() + 30
                    while (await http.get(f"{replica.url}/readyz?local=1")).status_code != 503:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.1)
                await asyncio.sleep(3)  # the outage lasts: the watchers poll and cannot record
                back = time.monotonic()
                door.up()
                for replica in replicas:
                    while (await http.get(f"{replica.url}/readyz?local=1")).status_code != 200:
                        assert time.monotonic() - back < 60
                        await asyncio.sleep(0.1)
                to_ready = time.monotonic() - back
            await wait_for(lambda: set(during) <= set(alerts_by_event(slack)) or None, timeout=60)
            await wait_for(lambda: set(during) <= set(clicked) or None, timeout=30)
            # A click the outage refused was answered "nothing was sent": its person clicks again.
            refused = await wait_for(lambda: refused_clicks(slack, sim, before + during), timeout=30)
            # If a refused claim's commit went through unseen, the replica that made it releases
            # it within a reconciler round; the other may answer "in hand" until then, and the
            # person clicks again.
            deadline = time.monotonic() + 60
            for attempt in range(1_000):
                unsent = [e for e in refused if sim.count("POST", f"{GIT_EVENTS}{e}") == 0]
                if not unsent or time.monotonic() > deadline:
                    break
                for n, event_id in enumerate(unsent):
                    await click(attempt + n, event_id)
                await asyncio.sleep(3)  # a person's pace between clicks, not a synchronisation
            try:
                await wait_for(
                    lambda: all(sim.count("POST", f"{GIT_EVENTS}{e}") == 1 for e in before + during) or None, timeout=60
                )
            except AssertionError:
                for e in before + during:
                    ts = clicked.get(e, ("", ""))[1]
                    said = [everything(m)[:160] for m in slack.thread(ALERTS, ts)[1:]] if ts else []
                    print("missing run:", e[:8], e in before, sim.count("POST", f"{GIT_EVENTS}{e}"), e in refused, said)
                raise
            # A rerun whose POST was on its way when the database went is settled by reading it back.
            store = await open_store(database_url)
            try:

                async def open_rows() -> list[str]:
                    return [r.event_id for r in await store.actions.list(limit=500) if r.in_flight]

                deadline = time.monotonic() + 60
                while left := await open_rows():
                    assert time.monotonic() < deadline, f"never settled: {left}"
                    await asyncio.sleep(0.2)
                rows = await store.actions.list(limit=500)
            finally:
                await store.close()
        finally:
            stream.cancel()
            await asyncio.gather(stream, return_exceptions=True)
            for replica in replicas:
                assert replica.proc.returncode is None, f"{replica.name} exited"
                await finish(replica)
        alerts = alerts_by_event(slack)
        assert all(alerts[e] == 1 for e in before + during), alerts  # none twice, none missing
        posts = {e: sim.count("POST", f"{GIT_EVENTS}{e}") for e in before + during}
        started = {e: sum(1 for r in rows if r.event_id == e and r.status == "started") for e in before + during}
        assert posts == started == dict.fromkeys(before + during, 1), (posts, started)
        summary = {"to_ready_s": round(to_ready, 2), "refused": len(refused), "posts": sum(posts.values())}
        print(json.dumps({**summary, "alerts": len(alerts)}))


async def test_an_outcome_known_but_not_recorded_is_settled_as_soon_as_the_database_is_back(
    outage: tuple[Harness, AppearingDatabase, str], caplog: pytest.LogCaptureFixture
) -> None:
    h, door, _ = outage
    alert = await h.post_alert("git", SAMPLE_FAILED_GIT_ID)
    h.sim.inject(Fault(method="POST", path=f"{GIT_EVENTS}{SAMPLE_FAILED_GIT_ID}$", delay=0.5, after_processing=True))
    await click_rerun(h, alert)
    await wait_for(lambda: h.sim.count("POST", f"{GIT_EVENTS}{SAMPLE_FAILED_GIT_ID}") == 1 or None, timeout=10)
    door.down()  # Code Stream answers while the database is away, longer than the write's retries
    await wait_for(
        lambda: any("could not record the outcome" in r.getMessage() for r in caplog.records) or None, timeout=30
    )
    door.up()
    deadline = time.monotonic() + 15  # far sooner than the reconciler's 10 minutes for a stuck row
    while True:
        [row] = [r for r in await h.store.actions.list() if r.event_id == SAMPLE_FAILED_GIT_ID]
        if row.status == "started" and row.finished_at is not None:
            break
        assert time.monotonic() < deadline, f"still {row.status}"
        await asyncio.sleep(0.2)
    assert h.sim.count("POST", f"{GIT_EVENTS}{SAMPLE_FAILED_GIT_ID}") == 1
