"""Liveness, readiness and the bookkeeping a graceful shutdown needs.

``/healthz``: the process is alive (the event loop answers). ``/readyz``: the database answers,
Code Stream accepts our login (checked at most every 30 s), Slack is connected (Socket Mode),
and the bot is not shutting down. The JSON body says which part is not ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from bot.codestream.errors import CodeStreamError

log = logging.getLogger(__name__)

CODESTREAM_CHECK_TTL: Final = 30.0


class Readiness:
    def __init__(
        self,
        ping_database: Callable[[], Awaitable[None]],
        check_codestream: Callable[[], Awaitable[object]],
        slack_connected: Callable[[], Awaitable[bool]] | None = None,
        *,
        ttl: float = CODESTREAM_CHECK_TTL,
        notes: Callable[[], Awaitable[dict[str, str]]] | None = None,
    ) -> None:
        self._notes = notes  # shown, but not part of readiness (e.g. undeliverable alerts)
        self._ping_database = ping_database
        self._check_codestream = check_codestream
        self.slack_connected = slack_connected
        self._ttl = ttl
        self._codestream: tuple[float, str] | None = None
        self._lock = asyncio.Lock()
        self.shutting_down = False

    async def report(self, *, local_only: bool = False) -> tuple[bool, dict[str, str]]:
        """``local_only``: Code Stream's state is reported but does not make the bot unready. A
        load balancer should keep routing to the bot during a vRA outage, so people get "Code
        Stream is unavailable" instead of Slack's own delivery errors."""
        parts: dict[str, str] = {}
        if self.shutting_down:
            parts["shutdown"] = "in progress: not taking new work"
        try:
            await asyncio.wait_for(self._ping_database(), timeout=5)
            parts["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            parts["database"] = f"unreachable ({type(exc).__name__})"
        parts["codestream"] = await self._codestream_state()
        if self.slack_connected is not None:
            try:
                parts["slack"] = "ok" if await self.slack_connected() else "not connected"
            except Exception as exc:  # noqa: BLE001
                parts["slack"] = f"unknown ({type(exc).__name__})"
        ready = all(v == "ok" for k, v in parts.items() if not (local_only and k == "codestream"))
        if self._notes is not None:
            try:
                parts.update(await asyncio.wait_for(self._notes(), timeout=5))
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                parts["notes"] = f"unavailable ({type(exc).__name__})"
        return ready, parts

    async def codestream_state(self) -> str:
        """ "ok", or why Code Stream is not ready (checked at most every ``ttl`` seconds)."""
        return await self._codestream_state()

    async def _codestream_state(self) -> str:
        async with self._lock:  # one check at a time; the rest reuse its answer
            cached = self._codestream
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
            try:
                await asyncio.wait_for(self._check_codestream(), timeout=10)
                state = "ok"
            except CodeStreamError as exc:
                state = f"not ready ({type(exc).__name__}: {exc.user_message})"
            except Exception as exc:  # noqa: BLE001
                state = f"not ready ({type(exc).__name__})"
            self._codestream = (time.monotonic(), state)
            return state
