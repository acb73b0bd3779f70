"""The real PostgreSQL server restarted under the bot — shut down cleanly (a managed database's
maintenance restart) or crashed (``-m immediate``: recovery at the next start, as after a
failover) — with ``pg_ctl`` on a server of the test's own: readiness says why while it is away,
a click meanwhile is told nothing was sent (and nothing is), the same click afterwards runs
once, every POST has its audit row, and the pool neither leaks nor stays broken."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from bot.simulator import SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import wait_for
from tests.e2e.test_database_outage import click_rerun, summaries, wait_for_async_status
from tests.harness import everything, running_harness
from tests.pgserver import OwnPostgres, StopMode, available, own_postgres

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=f"no server of the test's own: {available()}"),
    # One server for the module (initdb is most of the cost), so its tests stay on one worker.
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("own-postgres"),
]
GIT_EVENTS = "/codestream/api/git-events/"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[OwnPostgres]:
    async with own_postgres() as started:
        yield started


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["clean-restart", "crash"])
async def test_a_real_postgresql_restart_loses_nothing_and_runs_nothing_twice(
    server: OwnPostgres, tmp_path: Path, mode: StopMode, caplog: pytest.LogCaptureFixture
) -> None:
    database = await server.new_database()
    async with running_harness(tmp_path, BOT_DATABASE_URL=server.url_of(database)) as h:
        events = [SAMPLE_FAILED_GIT_ID] + [
            h.sim.add_event("git", pipeline=f"svc-{n}-ci", project="Payments", executionStatus="FAILED")["id"]
            for n in range(1)
        ]
        before, during = [await h.post_alert("git", event_id) for event_id in events]
        await click_rerun(h, before)
        await wait_for(lambda: summaries(h, before) or None, timeout=15)
        pooled = await server.connections(database)

        await server.stop(mode)
        async with httpx.AsyncClient(base_url=str(h.bot.url), timeout=10) as http:
            readyz = await wait_for_async_status(http, 503)
            assert "unreachable" in readyz["database"], readyz
            await click_rerun(h, during, user="U0BOB")
            [told] = await wait_for(lambda: summaries(h, during) or None, timeout=20)
            assert "nothing was sent to Code Stream" in everything(told), everything(told)
            assert h.sim.count("POST", f"{GIT_EVENTS}{events[1]}") == 0
            back = time.monotonic()
            await server.start()
            await wait_for_async_status(http, 200)
            to_ready = time.monotonic() - back
        await click_rerun(h, during, user="U0BOB")
        await wait_for(lambda: len(summaries(h, during)) == 2 or None, timeout=20)
        assert "Rerun started" in everything(summaries(h, during)[-1])

        rows = await h.store.actions.list(limit=100)
        posts = {e: h.sim.count("POST", f"{GIT_EVENTS}{e}") for e in events}
        started = {e: sum(1 for r in rows if r.event_id == e and r.status == "started") for e in events}
        assert posts == started == dict.fromkeys(events, 1), (posts, started)
        loops = ("bot.core.reconcile", "bot.core.followup", "bot.core.watcher")
        assert not [r.getMessage() for r in caplog.records if r.name in loops and r.levelname == "ERROR"]
        after = await server.connections(database)
        assert after <= max(pooled, 1) + 2, (pooled, after)  # reconnected, nothing leaked
        print(json.dumps({"mode": mode, "to_ready_s": round(to_ready, 2), "connections": [pooled, after]}))
