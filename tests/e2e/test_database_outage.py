"""PostgreSQL restarted under the bot (every connection reset, new ones refused, then back):
readiness says so, a click meanwhile is told nothing was sent (and nothing is), an action whose
POST was in flight is settled by reading it back once the database returns, and afterwards every
intent sent matches one POST and one audit row. The database is the test's own, behind a port
that can drop it (``tests/dbdoor.py``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from bot.simulator import SAMPLE_FAILED_GIT_ID, Fault
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from tests.conftest import POSTGRES_URL, needs_postgres
from tests.dbdoor import AppearingDatabase, appearing
from tests.harness import ALERTS, Harness, buttons, everything, running_harness
from tests.replicas import fresh_database

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
