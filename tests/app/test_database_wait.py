"""`serve` started while PostgreSQL is not reachable: it waits and retries with one log line per
attempt (no traceback, no exit), `/healthz` alive and `/readyz` not ready meanwhile, and serves
once the database appears. The database "appears" on a port of the test's own: bound but not
listening at first (connections refused), then forwarding to the test PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest

from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import SlackStandIn, wait_for
from tests.conftest import needs_postgres
from tests.dbdoor import appearing
from tests.harness import BOT_TOKEN
from tests.replicas import finish, fresh_database, replica_env, start_replica

pytestmark = [needs_postgres, pytest.mark.slow]


def attempts(log_path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if str(line.get("message", "")).startswith("database not reachable")]


async def test_serve_waits_for_postgresql_alive_and_not_ready_then_serves(tmp_path: Path) -> None:
    async with (
        fresh_database() as database_url,
        appearing(database_url) as (door, behind_door),
        CodeStreamSimulator() as sim,
        SlackStandIn(bot_token=BOT_TOKEN) as slack,
    ):
        env = replica_env(sim, slack, tmp_path, BOT_DATABASE_URL=behind_door)
        bot = await start_replica("waiting", env, tmp_path)
        log_path = tmp_path / "waiting.log"
        try:
            async with httpx.AsyncClient(base_url=bot.url, timeout=5) as http:

                async def status(path: str) -> int | None:
                    try:
                        return (await http.get(path)).status_code
                    except httpx.TransportError:
                        return None

                await wait_for(lambda: len(attempts(log_path)) >= 2 or None, timeout=30)
                assert await status("/healthz") == 200
                readyz = await http.get("/readyz")
                assert readyz.status_code == 503 and "not reachable" in readyz.json()["database"]
                assert bot.proc.returncode is None  # waiting, not exited
                await door.open()

                async def ready() -> bool:
                    return await status("/readyz") == 200

                deadline = asyncio.get_running_loop().time() + 60
                while not await ready():
                    assert asyncio.get_running_loop().time() < deadline, "never ready after the database appeared"
                    await asyncio.sleep(0.2)
                assert await status("/healthz") == 200
        finally:
            await finish(bot)
        text = log_path.read_text()
        assert "Traceback" not in text
        lines = attempts(log_path)
        assert len(lines) >= 2 and [line["attempt"] for line in lines] == list(range(1, len(lines) + 1))
        assert all("password" not in str(line) for line in lines)
        assert "database reachable after" in text


async def test_sigterm_while_waiting_for_the_database_ends_it_at_once(tmp_path: Path) -> None:
    async with (
        fresh_database() as database_url,
        appearing(database_url) as (_, behind_door),  # never opened: the database never comes
        CodeStreamSimulator() as sim,
        SlackStandIn(bot_token=BOT_TOKEN) as slack,
    ):
        env = replica_env(sim, slack, tmp_path, BOT_DATABASE_URL=behind_door)
        bot = await start_replica("stopping", env, tmp_path)
        log_path = tmp_path / "stopping.log"
        try:
            await wait_for(lambda: len(attempts(log_path)) >= 1 or None, timeout=30)
            bot.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(bot.proc.wait(), timeout=10)  # not after its next attempt, or never
        finally:
            await finish(bot)
        assert bot.proc.returncode == 0
        assert "stopped while waiting for the database" in log_path.read_text()
