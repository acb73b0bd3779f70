"""Hostile or broken peers cannot exhaust the bot: idle and half-sent connections (slowloris),
a connection flood, and an accept loop out of file descriptors."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot.app.httpserver import AcceptErrorsOncePerInterval, GuardedH11Protocol
from bot.simulator import SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, running_harness

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it


async def _open(host: str, port: int, send: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


async def test_a_thousand_idle_connections_do_not_delay_a_signed_slash_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GuardedH11Protocol, "header_timeout", 2.0)
    async with running_harness(tmp_path) as h:
        assert h.bot.url is not None
        host, port = h.bot.url.removeprefix("http://").split(":")
        half_sent = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Len"  # never finished
        idle = await asyncio.gather(*(_open(host, int(port), b"" if i % 2 else half_sent) for i in range(1000)))
        try:
            started = time.monotonic()
            resp = await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}")
            acked = time.monotonic() - started
            assert resp.status_code == 200
            assert acked < 3.0, f"ack took {acked:.2f} s behind 1,000 idle connections"
            await wait_for(lambda: [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT"], timeout=10)
            # The server lets go of them once the header deadline passes (the client sees EOF).
            await wait_for(lambda: all(reader.at_eof() for reader, _ in idle), timeout=15)
        finally:
            for _, writer in idle:
                writer.close()


def test_accept_errors_are_logged_once_per_interval() -> None:
    gate = AcceptErrorsOncePerInterval()
    records = [
        logging.makeLogRecord({"msg": "socket.accept() out of system resource", "levelno": logging.ERROR})
        for _ in range(1000)
    ]
    kept = [r for r in records if gate.filter(r)]
    assert len(kept) == 1 and "fd limit" in kept[0].getMessage()
    other = logging.makeLogRecord({"msg": "something else"})
    assert gate.filter(other)


async def test_at_a_low_fd_limit_idle_connections_cannot_starve_a_signed_rerun(tmp_path: Path) -> None:
    import os
    import sys

    from bot.simulator import CodeStreamSimulator
    from bot.simulator.slack_api import SlackSender, SlackStandIn
    from tests.harness import BOT_TOKEN, SIGNING_SECRET, listening_socket, port_of
    from tests.replicas import Replica, finish, ready, replica_env

    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = replica_env(sim, slack, tmp_path)
        listen = listening_socket()
        port = port_of(listen)
        log = (tmp_path / "bot.log").open("ab")
        command = f"ulimit -n 256 && exec {sys.executable} -m bot serve --mode http --fd {listen.fileno()}"
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            cwd=tmp_path,
            stdout=log,
            stderr=log,
            pass_fds=(listen.fileno(),),
        )
        listen.close()
        bot = await ready(Replica("low-fd", port, proc, log), slack)
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            for _ in range(400):  # more than the process may hold open
                idle.append(await _open("127.0.0.1", port, b""))
            async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, slack) as send:
                started = time.monotonic()
                resp = await asyncio.wait_for(send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}"), timeout=10)
                acked = time.monotonic() - started
            assert resp.status_code == 200 and acked < 3.0, f"{resp.status_code} after {acked:.2f} s"
            await wait_for(lambda: sim.count("POST", "/codestream/api/git-events/") == 1, timeout=10)
        finally:
            for _, writer in idle:
                writer.close()
            await finish(bot)
        text = (tmp_path / "bot.log").read_text()
        assert text.count("out of system resource") + text.count("cannot accept connections") <= 2


async def test_a_kept_alive_connection_or_a_trickled_body_cannot_be_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GuardedH11Protocol, "header_timeout", 1.0)
    monkeypatch.setattr(GuardedH11Protocol, "body_timeout", 1.5)
    async with running_harness(tmp_path) as h:
        assert h.bot.url is not None
        host, port = h.bot.url.removeprefix("http://").split(":")
        # One real request, then a single byte of the next one, held.
        kept_reader, kept = await _open(host, int(port), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nG")
        # Headers promising a body that only trickles.
        body_reader, body = await _open(
            host, int(port), b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab"
        )
        try:
            first = await asyncio.wait_for(kept_reader.readuntil(b"\r\n\r\n"), timeout=5)
            assert first.startswith(b"HTTP/1.1 200")
            # read() returns only at EOF: each times out unless the server closes the connection.
            await asyncio.wait_for(kept_reader.read(), timeout=10)
            await asyncio.wait_for(body_reader.read(), timeout=10)
            assert kept_reader.at_eof() and body_reader.at_eof()
        finally:
            kept.close()
            body.close()
