"""The HTTP server's defences against idle, slow and flooding clients (uvicorn underneath).

uvicorn closes a keep-alive connection after ``timeout_keep_alive``, but a connection that
never completes its first request's headers is held for ever: 300 idle or half-sent
connections (slowloris) were held for minutes, 8,000 cost ~34 MB and as many file descriptors,
and at a low fd limit they starved a real request. Here:

* a connection must send complete request headers within ``HEADER_TIMEOUT`` seconds (a new
  one, and a kept-alive one between requests) and the body within ``BODY_TIMEOUT`` more, or it
  is closed;
* at most ``max_connections`` are open at once (by default below the process's fd limit); past
  it, the connection that has waited longest without sending a request is closed, so that real
  requests still get through a flood;
* the listen backlog is explicit, and asyncio's "socket.accept() out of system resource"
  (logged once per accept attempt by asyncio itself) is logged at most once per minute, with
  how many were suppressed.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any, Final

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEADER_TIMEOUT: Final = 10.0
BODY_TIMEOUT: Final = 30.0  # from the headers to the end of the body
MAX_CONNECTIONS: Final = 2000
BACKLOG: Final = 1024
KEEP_ALIVE_TIMEOUT: Final = 5
LOG_EVERY: Final = 60.0


class _OncePerInterval:
    """Say something at most once per ``LOG_EVERY`` seconds, counting what was held back."""

    def __init__(self) -> None:
        self.last = float("-inf")
        self.suppressed = 0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= LOG_EVERY:
            self.last = now
            return True
        self.suppressed += 1
        return False

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count


_refused = _OncePerInterval()


def connection_cap() -> int:
    """MAX_CONNECTIONS, or fewer when the fd limit is low: leave room for the database, Code
    Stream and Slack connections."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - 200))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and a connection cap."""

    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    max_connections = connection_cap()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        waiting = self._waiting()
        waiting[self] = None
        if len(self.connections) > self.max_connections:
            # Make room by closing the connection that has waited longest without sending a
            # request: under a slowloris flood, real requests still get through.
            oldest = next(iter(waiting))
            if _refused.due():
                log.warning(
                    "too many open connections: closing the longest idle ones",
                    extra={"limit": self.max_connections, "suppressed": _refused.take_suppressed()},
                )
            oldest._close_idle()
            if oldest is self:
                return
        self._arm(self.header_timeout)

    def _waiting(self) -> dict[GuardedH11Protocol, None]:
        """Connections of this server waiting for a request's headers (a new connection, or a
        kept-alive one between requests), oldest first; kept on the server state."""
        table: dict[GuardedH11Protocol, None] | None = getattr(self.server_state, "_csbot_waiting", None)
        if table is None:
            table = {}
            self.server_state._csbot_waiting = table  # type: ignore[attr-defined]
        return table

    def _arm(self, seconds: float) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self._header_deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Waiting for the (next) request's headers: on a kept-alive connection too, so a
            # byte after a first request cannot hold the connection for ever.
            if self not in self._waiting():
                self._waiting()[self] = None
                self._arm(self.header_timeout)
        elif state is h11.SEND_BODY:
            # Headers in, body trickling: the whole request gets a deadline of its own.
            if self._waiting().pop(self, None) is not None or self._header_deadline is None:
                self._arm(self.body_timeout)
        else:
            self._waiting().pop(self, None)
            self._disarm()  # the request is in: its handling has no deadline here

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting().pop(self, None)
        self._disarm()
        super().connection_lost(exc)

    def _close_idle(self) -> None:
        self._waiting().pop(self, None)
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._close_idle()


class AcceptErrorsOncePerInterval(logging.Filter):
    """asyncio logs every failed accept (EMFILE...) at ERROR, thousands per second under a
    flood: keep one line per interval, saying how many were held back and what to do."""

    def __init__(self) -> None:
        super().__init__()
        self._gate = _OncePerInterval()

    def filter(self, record: logging.LogRecord) -> bool:
        if "socket.accept() out of system resource" not in str(record.msg):
            return True
        if not self._gate.due():
            return False
        record.msg = (
            "cannot accept connections: out of file descriptors or memory (%d more such errors held back "
            "this minute); raise the process's fd limit or put a connection limit in front of the bot"
        )
        record.args = (self._gate.take_suppressed(),)
        record.exc_info = None
        return True


def install_accept_error_filter() -> None:
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, AcceptErrorsOncePerInterval) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(AcceptErrorsOncePerInterval())


def server_options() -> dict[str, Any]:
    """uvicorn.Config keyword arguments for every server the bot runs."""
    install_accept_error_filter()
    return {
        "http": GuardedH11Protocol,
        "backlog": BACKLOG,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
        "h11_max_incomplete_event_size": 64 * 1024,  # request line + headers
        # At shutdown, requests still open get this long (Slack's are acked within 3 s).
        "timeout_graceful_shutdown": 3,
    }
