"""A whole bot in HTTP mode on loopback, between the Code Stream simulator and the Slack
stand-in, driven by requests signed exactly as Slack signs them."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from bot.app.runtime import Runtime
from bot.app.serve import RunningBot, Timings
from bot.app.settings import Settings, load_settings
from bot.codestream.client import RetryPolicy
from bot.codestream.models import EventKind
from bot.core.alerts import post_alert
from bot.core.reconcile import ReconcileTiming
from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import Message, SlackSender, SlackStandIn
from bot.slack.app import SlackRetry
from bot.slack.pacing import ChannelPacer
from bot.store import ActionRecord, Store

_T = TypeVar("_T")

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"
ALERTS = "C0ALERTS"
FAST = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05, reconcile_reads=2, reconcile_delay=0.05)
FAST_SLACK_RETRY = SlackRetry(backoff=0.01)


# For a Delivery a test builds itself (the harness sets BOT_SLACK_CHANNEL_RATE instead).
def fast_pacing() -> ChannelPacer:
    return ChannelPacer(rate=100)


FAST_RECONCILE = ReconcileTiming(interval=0.1, heartbeat=0.5, min_delay=0.1, max_delay=0.3, stale_after=3.0)


@dataclass
class Harness:
    sim: CodeStreamSimulator
    slack: SlackStandIn
    bot: RunningBot
    send: SlackSender
    settings: Settings

    @property
    def runtime(self) -> Runtime:
        assert self.bot.runtime is not None
        return self.bot.runtime

    @property
    def store(self) -> Store:
        return self.runtime.store

    async def post_alert(self, kind: EventKind, event_id: str, channel: str = ALERTS) -> Message:
        """Post the failure alert for an event, as the watcher does."""
        event = await self.runtime.client.get_event(kind, event_id)
        record, _ = await post_alert(self.runtime.notifier(), self.store, event, channel=channel)
        assert record is not None
        message = self.slack.message(channel, record.ts)
        assert message is not None
        return message

    def posts(self, method: str = "POST", path: str = "/codestream/api/") -> int:
        return self.sim.count(method, path)


def everything(message: Message) -> str:
    """A message's notification text and blocks, as one string to search."""
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    """A message's buttons by action id."""
    return {
        e["action_id"]: e
        for b in message.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("type") == "button"
    }


def bot_env(sim: CodeStreamSimulator, slack: SlackStandIn, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert sim.base_url is not None
    env = {
        "CODESTREAM_URL": sim.base_url,
        "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
        "CODESTREAM_TIMEOUT": "2",
        "CODESTREAM_UI_URL": "https://vra.example.com/codestream/#/executions/{id}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        # Alerts are not spaced a second apart in tests (tests/slack/test_pacing.py sets its own).
        "BOT_SLACK_CHANNEL_RATE": "100",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def running_harness(tmp_path: Path, **env: Any) -> AsyncIterator[Harness]:
    sim = CodeStreamSimulator(execution_duration=0.5)
    await sim.start()
    slack = SlackStandIn(bot_token=BOT_TOKEN)
    await slack.start()
    settings = load_settings(bot_env(sim, slack, tmp_path, **env))
    timings = Timings(retry=FAST, reconcile=FAST_RECONCILE, slack_retry=FAST_SLACK_RETRY)
    bot = RunningBot(settings, mode="http", timings=timings)
    await bot.start()
    assert bot.url is not None
    sender = SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack)
    try:
        yield Harness(sim=sim, slack=slack, bot=bot, send=sender, settings=settings)
    finally:
        await sender.aclose()
        await bot.stop()
        await slack.stop()
        await sim.stop()


@asynccontextmanager
async def harness_with_config(tmp_path: Path, config: str, **env: Any) -> AsyncIterator[Harness]:
    """A running bot with ``config`` as its BOT_CONFIG file."""
    path = tmp_path / "bot.yaml"
    path.write_text(config)
    async with running_harness(tmp_path, BOT_CONFIG=str(path), **env) as h:
        yield h


def listening_socket() -> socket.socket:
    """A loopback socket bound to a port the OS chose, already listening: handed to a child
    (``serve --fd``), so no other process can take the port between choosing and serving."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


async def bot_cli(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    stdout: int | IO[bytes] = asyncio.subprocess.PIPE,
    stderr: int | IO[bytes] = asyncio.subprocess.PIPE,
    listen: socket.socket | None = None,
) -> asyncio.subprocess.Process:
    """Start ``python -m bot <args>`` as its own process, with only ``env`` (plus PATH);
    ``listen`` is handed over as ``--fd`` (and closed here: the child owns it)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    fds: tuple[int, ...] = ()
    if listen is not None:
        args = (*args, "--fd", str(listen.fileno()))
        fds = (listen.fileno(),)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, env=full_env, cwd=cwd, stdout=stdout, stderr=stderr, pass_fds=fds
        )
    finally:
        if listen is not None:
            listen.close()


async def wait_for_rows(h: Harness, n: int, within: float = 5.0) -> list[ActionRecord]:
    """Wait until the audit trail has at least ``n`` rows (newest first)."""
    deadline = time.monotonic() + within
    rows = await h.store.actions.list()
    while len(rows) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} audit rows, got {len(rows)}: {rows}")
        await asyncio.sleep(0.01)
        rows = await h.store.actions.list()
    return rows


async def wait_for_async(probe: Callable[[], Awaitable[_T | None]], within: float = 15.0) -> _T:
    """Wait until an async probe returns something truthy (with a deadline)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
