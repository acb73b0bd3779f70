"""Starting while PostgreSQL is not there yet (a managed database failing over, a cluster where
the bot starts first): ``serve`` waits for it instead of crash-looping. Meanwhile a small server
on the bot's own port answers ``/healthz`` (alive) and ``/readyz`` (not ready, and why), and every
attempt is one log line. A SQLite file needs no wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app.httpserver import server_options
from bot.store.engine import normalize_url

log = logging.getLogger("bot.app.database")

#: Seconds between attempts: quickly at first (a restart), then every 30 s.
BACKOFF: Final = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
CONNECT_TIMEOUT: Final = 10.0


async def database_error(url: str) -> Exception | None:
    """Why the database cannot be used right now (None: it answers)."""
    engine = create_async_engine(normalize_url(url), poolclass=NullPool)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any reason is a reason to wait
        return exc
    finally:
        await engine.dispose()


def describe(error: Exception, url: str) -> str:
    """One line about ``error`` for the log, without the URL's password."""
    message = " ".join(str(error).split()) or "no answer"
    password = normalize_url(url).password
    if password:
        message = message.replace(str(password), "***")
    return f"{type(error).__name__}: {message[:200]}"


class _QuietServer(uvicorn.Server):
    """The waiting room's server leaves the signals to ``serve`` (whose handlers end the wait)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class WaitingRoom:
    """``/healthz`` alive, ``/readyz`` 503 with the reason, everything else 503."""

    host: str
    port: int
    fd: int | None
    reason: str = "waiting for the database"
    _server: uvicorn.Server | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(_: Request) -> Response:
            # The class only, as the bot's own /readyz says it: the port may be public.
            return JSONResponse({"ready": False, "database": self.reason}, status_code=503)

        async def other(_: Request) -> Response:
            return JSONResponse({"error": "starting: waiting for the database"}, status_code=503)

        app = Starlette(
            routes=[
                Route("/healthz", healthz, methods=["GET"]),
                Route("/readyz", readyz, methods=["GET"]),
                Route("/{path:path}", other, methods=["GET", "POST"]),
            ]
        )
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_config=None, lifespan="off", access_log=False, **server_options()
        )
        self._server = _QuietServer(config)
        # An inherited socket is the bot's for later: serve on a duplicate, closed on stop.
        sockets = None if self.fd is None else [socket.socket(fileno=os.dup(self.fd))]
        self._task = asyncio.create_task(self._server.serve(sockets=sockets))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task


async def wait_for_database(
    url: str,
    *,
    host: str,
    port: int,
    fd: int | None,
    check: Callable[[str], Awaitable[Exception | None]] = database_error,
    stop: asyncio.Event | None = None,
) -> bool:
    """Return True once PostgreSQL answers, False when ``stop`` is set first (a SIGTERM)."""
    stop = stop or asyncio.Event()
    if not url.startswith("postgresql"):
        return True
    error = await _unless(stop, check(url))
    if stop.is_set():
        return False
    if error is None:
        return True
    room = WaitingRoom(host, port, fd)
    await room.start()
    attempt = 1
    try:
        while error is not None:
            delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
            room.reason = f"not reachable ({type(error).__name__})"
            log.warning(
                "database not reachable (attempt %d): %s; trying again in %.0f s",
                attempt,
                describe(error, url),
                delay,
                extra={"attempt": attempt, "error_class": type(error).__name__},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
            attempt += 1
            error = await _unless(stop, check(url))
            if stop.is_set():
                return False
    finally:
        await room.stop()
    log.info("database reachable after %d attempts", attempt, extra={"attempt": attempt})
    return True


async def _unless(stop: asyncio.Event, check: Awaitable[Exception | None]) -> Exception | None:
    """``check``'s answer, or None at once when ``stop`` is set meanwhile (the check is cancelled)."""
    checking = asyncio.ensure_future(check)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({checking, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (checking, stopping):
        task.cancel()
    await asyncio.gather(checking, stopping, return_exceptions=True)
    return checking.result() if checking.done() and not checking.cancelled() else None
