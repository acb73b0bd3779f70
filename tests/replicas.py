"""Several bot processes (``python -m bot serve --mode http``) on one PostgreSQL database, between
the Code Stream simulator and the Slack stand-in running in the test process."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg
import httpx

from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import SlackSender, SlackStandIn
from tests.conftest import POSTGRES_URL
from tests.harness import BOT_TOKEN, SIGNING_SECRET, bot_cli, bot_env, listening_socket, port_of


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    assert POSTGRES_URL is not None
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = f"csbot_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class Replica:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    log: IO[bytes]
    send: SlackSender | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def kill(self) -> None:
        """SIGKILL: no shutdown, leases stay until they expire."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


@dataclass
class Cluster:
    sim: CodeStreamSimulator
    slack: SlackStandIn
    database_url: str
    replicas: list[Replica] = field(default_factory=list)


async def _wait_healthy(replica: Replica, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as http:
        while True:
            if replica.proc.returncode is not None:
                raise AssertionError(f"{replica.name} exited with {replica.proc.returncode}")
            try:
                if (await http.get(f"{replica.url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{replica.name} did not become healthy")
            await asyncio.sleep(0.05)


async def start_replica(name: str, env: dict[str, str], tmp_path: Path) -> Replica:
    """``python -m bot serve --mode http`` on a socket the OS chose, logging to ``<tmp_path>/<name>.log``."""
    listen = listening_socket()
    port = port_of(listen)
    log = (tmp_path / f"{name}.log").open("ab")
    proc = await bot_cli("serve", "--mode", "http", env=env, cwd=tmp_path, stdout=log, stderr=log, listen=listen)
    return Replica(name, port, proc, log)


async def ready(replica: Replica, slack: SlackStandIn, within: float = 30.0) -> Replica:
    await _wait_healthy(replica, within)
    replica.send = SlackSender(f"{replica.url}/slack/events", SIGNING_SECRET, slack)
    return replica


async def finish(replica: Replica) -> None:
    """SIGTERM and wait (SIGKILL after 30 s); close its sender and log."""
    if replica.send is not None:
        await replica.send.aclose()
        replica.send = None
    if replica.proc.returncode is None:
        replica.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(replica.proc.wait(), timeout=30)
        except TimeoutError:
            await replica.kill()
    replica.log.close()


def replica_env(sim: CodeStreamSimulator, slack: SlackStandIn, tmp_path: Path, **env: str) -> dict[str, str]:
    return {
        **bot_env(sim, slack, tmp_path, **env),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BOT_LOG_FORMAT": "json",
    }


@asynccontextmanager
async def cluster(tmp_path: Path, replicas: int = 2, **env: str) -> AsyncIterator[Cluster]:
    async with (
        fresh_database() as database_url,
        CodeStreamSimulator(execution_duration=2.0) as sim,
        SlackStandIn(bot_token=BOT_TOKEN) as slack,
    ):
        shared = replica_env(sim, slack, tmp_path, BOT_DATABASE_URL=database_url, **env)
        group = Cluster(sim=sim, slack=slack, database_url=database_url)
        try:
            for index in range(replicas):
                group.replicas.append(await start_replica(f"replica-{index}", shared, tmp_path))
            for replica in group.replicas:
                await ready(replica, slack)
            yield group
        finally:
            for replica in group.replicas:
                await finish(replica)
