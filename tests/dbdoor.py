"""A PostgreSQL that comes and goes, for the tests of the bot's infrastructure: a loopback port
of the test's own that forwards to the test database — refused until ``open()``, and ``down()``
drops every connection and resets new ones (a restart or failover, seen from the bot) until
``up()``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url


class AppearingDatabase:
    """A loopback port that refuses connections until ``open()``, then forwards them."""

    available = True  # False while down(): connections are reset

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = int(self.sock.getsockname()[1])
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._connected, sock=self.sock)

    def down(self) -> None:
        """Every connection dropped (reset), and new ones reset at once, until ``up()``."""
        self.available = False
        for task in list(self.pipes):
            task.cancel()
        for writer in list(self.writers):
            _reset(writer)
        self.writers.clear()

    def up(self) -> None:
        self.available = True

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.available:
            _reset(writer)
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()
            self.writers.discard(dst)

        for task in (asyncio.create_task(pump(reader, up_writer)), asyncio.create_task(pump(up_reader, writer))):
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)
        self.sock.close()


@contextlib.asynccontextmanager
async def appearing(database_url: str) -> AsyncIterator[tuple[AppearingDatabase, str]]:
    url = make_url(database_url)
    door = AppearingDatabase(url.host or "127.0.0.1", url.port or 5432)
    try:
        yield door, url.set(host="127.0.0.1", port=door.port).render_as_string(hide_password=False)
    finally:
        await door.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a database process that died would leave it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
