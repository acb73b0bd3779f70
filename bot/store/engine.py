"""Engine creation (SQLite and PostgreSQL): drivers, SQLite's WAL mode, busy timeout and how its
transactions begin. Creating and upgrading the schema is ``bot.store.migrate``'s."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.util import await_

#: How long a SQLite connection waits for another writer before failing ("database is locked").
SQLITE_BUSY_TIMEOUT_S = 30.0

_DEFAULT_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``sqlite://`` / ``postgresql://`` get the async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _DEFAULT_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite+aiosqlite or postgresql+asyncpg")
    if parsed.drivername == backend:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[backend])
    return parsed


#: Execution option naming how a SQLite transaction begins. Writers use ``IMMEDIATE``: a deferred
#: transaction that reads and then writes cannot wait for the lock (SQLite answers "database is
#: locked" at once instead of applying busy_timeout), an immediate one takes the write lock up
#: front and queues behind busy_timeout. Readers stay deferred, so WAL readers never block.
SQLITE_BEGIN = "sqlite_begin"
SQLITE_WRITE_OPTIONS: dict[str, Any] = {SQLITE_BEGIN: "IMMEDIATE"}
#: PostgreSQL's pool is in autocommit (``make_engine``): a read is its one statement, with no
#: BEGIN and ROLLBACK around it (two round trips of three) and a one-statement pre-ping instead
#: of a ping wrapped in its own transaction. Under READ COMMITTED, PostgreSQL's default, every
#: statement of a transaction takes its own snapshot anyway, so reads lose no consistency.
#: Writers ask for a READ COMMITTED transaction explicitly.
POSTGRESQL_WRITE_OPTIONS: dict[str, Any] = {"isolation_level": "READ COMMITTED"}


def write_options(dialect: str) -> dict[str, Any]:
    """The execution options of a write transaction on ``dialect``'s engine."""
    return SQLITE_WRITE_OPTIONS if dialect == "sqlite" else POSTGRESQL_WRITE_OPTIONS


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN (deferred, and only before DML) is off; _sqlite_on_begin
    # emits ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def sqlite_file(url: URL) -> str | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return database


def ensure_wal(path: str, *, timeout: float = SQLITE_BUSY_TIMEOUT_S) -> None:
    """Put the database file in WAL mode (once; the mode is stored in the file).

    Switching needs an exclusive lock and SQLite does not apply busy_timeout to it: with other
    connections opening the same fresh file at that moment it fails at once with "database is
    locked". So: check first (WAL already: nothing to do), and retry the switch with a short
    backoff until ``timeout``. Blocking: run it in a thread."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        conn = sqlite3.connect(path, timeout=timeout)
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            if str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        finally:
            conn.close()
        time.sleep(delay + random.uniform(0, delay))
        delay = min(delay * 2, 0.5)


async def prepare_sqlite(url: str | URL) -> None:
    """Before the first connection of a SQLite store: WAL mode (see ``ensure_wal``)."""
    parsed = normalize_url(url)
    path = sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        await asyncio.to_thread(ensure_wal, path)


def begin_statement(conn: Connection) -> str:
    """How this connection's SQLite transaction begins (``SQLITE_WRITE_OPTIONS``: IMMEDIATE)."""
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    return f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}"


def _sqlite_on_begin(conn: Connection) -> None:
    sql = begin_statement(conn)
    # Straight to aiosqlite: one hand-off to its thread (``exec_driver_sql`` makes three: a
    # cursor, the statement, closing the cursor). Errors come out as they would from there:
    # the adapter's translation, then SQLAlchemy's wrapping (OperationalError, "database is
    # locked"; a dead connection is invalidated).
    adapted: Any = conn.connection.dbapi_connection  # SQLAlchemy's AsyncAdapt_aiosqlite_connection
    try:
        try:
            await_(adapted.driver_connection.execute_fetchall(sql))
        except Exception as exc:  # noqa: BLE001 - re-raised, translated
            adapted._handle_exception(exc)
    except Exception as exc:  # noqa: BLE001 - re-raised, wrapped
        conn._handle_dbapi_exception(exc, sql, None, None, None)


def _sqlite_on_reset(dbapi_connection: Any, _record: ConnectionPoolEntry, state: PoolResetState) -> None:
    """A connection back in the pool: roll back only if a transaction is still open there.

    Replaces the pool's unconditional ROLLBACK on return (a hand-off to aiosqlite's thread for
    nothing after every commit). The driver is in autocommit mode (isolation_level None), so
    the only transactions are our BEGINs; ``Connection.close()`` rolls back the one it began
    (and one whose COMMIT failed) before this runs, so this is the safety net for anything
    else. ``in_transaction`` is read without a hand-off."""
    if state.terminate_only or not state.asyncio_safe:
        return  # the connection is being discarded
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def make_engine(url: str | URL, *, schema: str | None = None, **kwargs: Any) -> AsyncEngine:
    """Create the async engine. ``schema`` (PostgreSQL only; ignored for SQLite) is applied to
    every statement through ``schema_translate_map``."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, **kwargs.pop("connect_args", {})}
        kwargs.setdefault("pool_reset_on_return", None)  # _sqlite_on_reset does it when needed
        engine = create_async_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        event.listen(engine.sync_engine, "reset", _sqlite_on_reset)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("isolation_level", "AUTOCOMMIT")  # reads; writers: POSTGRESQL_WRITE_OPTIONS
    if schema:
        kwargs["execution_options"] = {
            **kwargs.get("execution_options", {}),
            "schema_translate_map": {None: schema},
        }
    return create_async_engine(parsed, **kwargs)
