"""SQLite on the event loop: every statement of the store's parts runs inline, through the
synchronous driver, with no hand-off to a thread.

Why: through aiosqlite each statement was a hop to one of up to 15 worker threads and back, and
writers queued in SQLite's busy handler (sleeps) for the write lock while the loop was busy. A
SQLite statement on a local file takes microseconds, far less than the hop; here it runs where
it is awaited, and writers queue on an ``asyncio.Lock`` instead of in the busy handler, so only
one transaction of this process ever holds SQLite's write lock and no other one of it waits
for it. WAL readers never wait for the writer.

The write lock held by another connection — another process (a second bot starting on the same
file, an operator's ``sqlite3`` shell), or an aiosqlite connection of this one (a migration, or
``check`` run beside a bot in tests) whose transaction needs this very loop to finish — is never
waited for in SQLite's busy handler, which would stop the loop (and, for the aiosqlite holder,
never let it commit). The connections have no busy timeout; ``BEGIN IMMEDIATE`` that finds the
lock taken is tried again after an ``asyncio.sleep``, until ``INLINE_BUSY_TIMEOUT_S``; then the
write fails as "database is locked". Nothing else waits: WAL readers never do, and statements
inside a transaction begun IMMEDIATE already hold the lock.

The aiosqlite engine (``Store.engine``) remains for creating and upgrading the schema and for
tools that want an ``AsyncEngine``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Executable, RootTransaction, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import CoreExecuteOptionsParameter
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState, QueuePool
from sqlalchemy.util.typing import TupleAny

from bot.store.conn import Conn, Params
from bot.store.engine import SQLITE_WRITE_OPTIONS, begin_statement, sqlite_file

#: How long a write waits for the write lock another connection holds (asleep: the loop runs).
INLINE_BUSY_TIMEOUT_S = 30.0
#: The longest sleep between two attempts at the lock.
_MAX_BACKOFF_S = 0.05
#: Idle read connections kept open; more are opened when more reads are open at once.
_READ_POOL = 4


class InlineConnection(Conn):
    """A connection of the store's parts (``await conn.execute(stmt)``) that runs each
    statement at once, on the calling thread."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self,
        statement: Executable,
        parameters: Params = None,
        *,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[*TupleAny]:
        return self._conn.execute(statement, parameters, execution_options=execution_options)


def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN: _on_begin emits ours
    dbapi_connection.execute("PRAGMA busy_timeout = 0")  # InlineSqlite.write waits, asleep
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def _on_begin(conn: Connection) -> None:
    sql = begin_statement(conn)
    try:
        conn.connection.dbapi_connection.execute(sql)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - re-raised, wrapped as SQLAlchemy's
        conn._handle_dbapi_exception(exc, sql, None, None, None)


def _on_reset(dbapi_connection: Any, _record: ConnectionPoolEntry, state: PoolResetState) -> None:
    # Back in the pool: roll back only a transaction still open (Connection.close() already
    # rolled back its own), not an unconditional ROLLBACK after every commit.
    if not state.terminate_only and dbapi_connection.in_transaction:
        dbapi_connection.rollback()


def _is_busy(exc: OperationalError) -> bool:
    """SQLite's "the lock is taken" (SQLITE_BUSY), as opposed to any other failure."""
    name = getattr(exc.orig, "sqlite_errorname", None)
    return name in ("SQLITE_BUSY", "SQLITE_LOCKED") if name else "locked" in str(exc.orig)


class InlineSqlite:
    """The read and write transactions of a SQLite file, run inline on the event loop."""

    def __init__(self, url: URL) -> None:
        self.engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            poolclass=QueuePool,
            pool_size=_READ_POOL,
            max_overflow=-1,  # never block the loop waiting for a connection
            pool_reset_on_return=None,  # _on_reset does it when needed
            connect_args={"timeout": 0, "check_same_thread": False},
        )
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "begin", _on_begin)
        event.listen(self.engine, "reset", _on_reset)
        self._writer = self.engine.execution_options(**SQLITE_WRITE_OPTIONS)
        self._write_turn = asyncio.Lock()

    @classmethod
    def of(cls, url: URL) -> InlineSqlite | None:
        """For a SQLite file; None for anything else (PostgreSQL, an in-memory SQLite)."""
        return cls(url) if url.get_backend_name() == "sqlite" and sqlite_file(url) is not None else None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[InlineConnection]:
        with self.engine.connect() as conn:
            yield InlineConnection(conn)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[InlineConnection]:
        async with self._write_turn:
            with self._writer.connect() as conn, await self._begin(conn):
                yield InlineConnection(conn)

    @staticmethod
    async def _begin(conn: Connection) -> RootTransaction:
        """``BEGIN IMMEDIATE``, tried again (asleep) while another connection holds the lock."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INLINE_BUSY_TIMEOUT_S
        delay = 0.001
        while True:
            try:
                return conn.begin()
            except OperationalError as exc:
                if not _is_busy(exc) or loop.time() >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF_S)

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["INLINE_BUSY_TIMEOUT_S", "InlineConnection", "InlineSqlite"]
