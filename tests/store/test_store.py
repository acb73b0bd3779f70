"""Tests for bot.store as a whole on SQLite and (when BOT_TEST_POSTGRES_URL is set) PostgreSQL: opening
and upgrading, the clock and timestamps, how SQLite transactions begin and end, the hook before
each transaction. Each part has its own file (test_claims.py...)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, Table, Text, insert, select, text
from sqlalchemy.exc import OperationalError

from bot.store import SchemaVersionError, Store, open_store, upgrade
from bot.store.cursors import cursors
from bot.store.migrate import schema_version
from bot.store.tables import MIGRATIONS, Migration, add_column, latest_version
from tests.conftest import Backend
from tests.store.common import T0, FakeClock, make_action

LATEST = latest_version()
NEXT = LATEST + 1


async def _version(s: Store) -> int:
    async with s.engine.connect() as conn:
        return int((await conn.execute(select(schema_version.c.version))).scalar_one())


async def test_open_is_idempotent_and_pings(backend: Backend, store: Store) -> None:
    await store.ping()
    assert await _version(store) == LATEST
    await store.cursors.set("kept", "yes")
    again = await open_store(backend.url, schema=backend.schema)
    try:
        await again.ping()
        assert await _version(again) == LATEST
        assert await again.cursors.get("kept") == "yes"
        assert again.dialect == ("postgresql" if backend.name == "postgres" else "sqlite")
    finally:
        await again.close()


async def test_concurrent_open_of_fresh_database(backend: Backend) -> None:
    stores = await asyncio.gather(*(open_store(backend.url, schema=backend.schema) for _ in range(4)))
    try:
        for s in stores:
            assert await _version(s) == LATEST
    finally:
        for s in stores:
            await s.close()


async def test_migrations_run_once_and_newer_schema_is_refused(backend: Backend, store: Store) -> None:
    ran: list[int] = []
    note = Column("note", Text)
    Table("cursors", MetaData(), note)  # the next shape of the column, for add_column

    def v2(conn: Any) -> None:
        ran.append(NEXT)
        add_column(conn, note)
        conn.execute(insert(cursors).values(name="migrated", value="v2", updated_at=T0))

    migrations = [*MIGRATIONS, Migration(NEXT, "cursor notes", v2)]
    assert await upgrade(store.engine, schema=backend.schema, now=T0, migrations=migrations) == NEXT
    assert await upgrade(store.engine, schema=backend.schema, now=T0, migrations=migrations) == NEXT
    assert ran == [NEXT]
    assert await _version(store) == NEXT
    assert await store.cursors.get("migrated") == "v2"
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(note.table.c.note))).all() == [(None,)]
    with pytest.raises(SchemaVersionError, match="newer"):
        await open_store(backend.url, schema=backend.schema)


async def test_unsupported_url_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        await open_store("mysql+aiomysql://localhost/x")


async def test_timestamps_are_utc_from_any_offset(store: Store) -> None:
    from datetime import timezone

    plus2 = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, tzinfo=plus2)  # == T0
    action_id = await store.actions.record(make_action(created_at=local))
    got = await store.actions.get(action_id)
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.tzinfo is UTC
    assert [a.id for a in await store.actions.list(since=T0)] == [action_id]
    with pytest.raises(ValidationError):
        make_action(created_at=datetime(2024, 5, 1))  # naive


async def test_naive_clock_rejected(backend: Backend) -> None:
    s = await open_store(backend.url, schema=backend.schema)
    try:
        naive = Store(s.engine, clock=lambda: datetime(2024, 1, 1))
        with pytest.raises(ValueError, match="naive"):
            await naive.claims.claim("k", "a", 1)
    finally:
        await s.close()


async def test_sqlite_storage_is_wal_and_sortable_text(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plain.db'}", clock=FakeClock())  # driver defaulted
    try:
        await store.cursors.set("c", "v")
        async with store.engine.connect() as conn:
            raw = (await conn.execute(text("SELECT updated_at FROM cursors"))).scalar_one()
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await store.close()
    assert raw == "2024-05-01 12:00:00.000000"
    assert mode == "wal"


async def _sqlite_pair(tmp_path: Path) -> tuple[Store, Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    return await open_store(url, clock=FakeClock()), await open_store(url, clock=FakeClock())


async def test_sqlite_writers_begin_immediate_and_readers_deferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.store.engine
    import bot.store.inline

    monkeypatch.setattr(bot.store.engine, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # fail fast when locked
    monkeypatch.setattr(bot.store.inline, "INLINE_BUSY_TIMEOUT_S", 0.2)
    store, other = await _sqlite_pair(tmp_path)
    try:
        await store.cursors.set("c", "v")
        async with other.engine.connect() as holder:
            driver: Any = (await holder.get_raw_connection()).driver_connection  # aiosqlite's
            await driver.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            assert await store.cursors.get("c") == "v"  # a reader does not wait (deferred, WAL)
            with pytest.raises(OperationalError, match="locked"):  # a writer waits, then fails as SQLAlchemy's
                await store.cursors.set("c", "w")
            await driver.rollback()
        await store.cursors.set("c", "w")  # and its connection is fine afterwards
        assert await other.cursors.get("c") == "w"
    finally:
        await store.close()
        await other.close()


async def test_a_writer_waits_for_the_lock_without_stopping_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection of this process holds SQLite's write lock in a transaction that needs
    the event loop to finish (aiosqlite's, as ``check`` run beside a bot uses): a write waits
    for it without blocking the loop, and goes through once it commits."""
    import bot.store.inline

    monkeypatch.setattr(bot.store.inline, "INLINE_BUSY_TIMEOUT_S", 3.0)
    store, other = await _sqlite_pair(tmp_path)
    try:
        holding = asyncio.Event()

        async def hold_the_lock() -> None:
            async with other.engine.begin() as conn:  # aiosqlite: every step goes through the loop
                await conn.execute(insert(cursors).values(name="held", value="1", updated_at=T0))
                holding.set()
                await asyncio.sleep(0.3)

        holder = asyncio.create_task(hold_the_lock())
        await holding.wait()
        started = asyncio.get_running_loop().time()
        await store.cursors.set("c", "v")  # waits for the holder's commit, the loop running
        await holder
        assert asyncio.get_running_loop().time() - started < 2.0
        assert await store.cursors.get("held") == "1" and await store.cursors.get("c") == "v"
    finally:
        await store.close()
        await other.close()


async def test_sqlite_connection_returned_mid_transaction_holds_no_lock(tmp_path: Path) -> None:
    store, other = await _sqlite_pair(tmp_path)
    try:

        async def write_then_fail() -> None:
            async with store.cursors._write() as conn:
                await conn.execute(insert(cursors).values(name="a", value="1", updated_at=T0))
                raise RuntimeError("midway")

        with pytest.raises(RuntimeError, match="midway"):
            await write_then_fail()
        # The lock is gone at once (busy_timeout would make a leak wait 30 s) and nothing stayed.
        await asyncio.wait_for(other.cursors.set("b", "2"), 5)
        assert await other.cursors.get("a") is None
        # Even a transaction SQLAlchemy never saw (begun on the driver itself) ends with its connection.
        async with store.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            await driver.execute("BEGIN IMMEDIATE")
            assert driver.in_transaction
        await asyncio.wait_for(other.cursors.set("c", "3"), 5)
        async with store.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert not driver.in_transaction
        await asyncio.wait_for(store.cursors.set("d", "4"), 5)  # its pooled connections still write
    finally:
        await store.close()
        await other.close()


async def test_the_hook_set_after_opening_runs_before_every_part_s_transactions(store: Store) -> None:
    """The app sets the acks-first hook once the store exists: every part, made before that, waits
    its turn once per read or write transaction."""
    turns: list[int] = []

    async def wait_turn() -> None:
        turns.append(1)

    store.before_each_transaction(wait_turn)
    await store.cursors.set("c", "v")  # a write
    assert await store.cursors.get("c") == "v"  # a read
    await store.mutes.active(T0)
    await store.claims.claim("k", "a", 10)
    await store.intents.claim("intent:k", "a", 10, {}, make_action())
    await store.liveness.heartbeat("me")
    await store.ping()
    assert len(turns) == 7
