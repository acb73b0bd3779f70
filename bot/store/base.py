"""What every part of the store shares: the database (engine, clock, before-transaction hook), the
base class of the parts, and the checks on arguments.

The store (:class:`bot.store.Store`) is one part per kind of state (``store.claims``,
``store.mutes``...), each a :class:`Part` in its feature module. They all hold the same
:class:`Database`: one engine and pool, one clock, and the hook the app sets after the store is
built, which every part must see; so they keep a reference to it, never a copy of what it holds.
"now" always comes from the store's clock (Python side) and is compared in the database. On
PostgreSQL a store opened for replicas follows the database's clock: its "now" is the process's
clock plus the offset measured to the database's (``sync_clock``, at start and every heartbeat),
so replicas whose clocks disagree still agree on leases, claims and dedupe windows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Delete, Engine, Executable, Row, Select, Table, Update, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.conn import Conn
from bot.store.engine import write_options
from bot.store.inline import InlineSqlite

if TYPE_CHECKING:  # each dialect's module is imported only by a store on that database
    from sqlalchemy.dialects import postgresql, sqlite

Clock = Callable[[], datetime]
Hook = Callable[[], Awaitable[None]]
Insert: TypeAlias = "postgresql.Insert | sqlite.Insert"  # the dialect's, with ON CONFLICT
T = TypeVar("T")


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:  # constraints/validators pydantic moved off the annotation
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


def validated_changes(model: type[BaseModel], changes: Mapping[str, Any], frozen: set[str]) -> dict[str, Any]:
    """``changes`` to ``model``'s fields, each validated as the field would be; changing a
    field that does not exist or is in ``frozen`` raises TypeError."""
    unknown = set(changes) - (set(model.model_fields) - frozen)
    if unknown:
        raise TypeError(f"cannot update {model.__name__} field(s): {', '.join(sorted(unknown))}")
    return {name: _field_adapter(model, name).validate_python(value) for name, value in changes.items()}


def seconds(value: float, what: str) -> timedelta:
    """A positive number of seconds as a timedelta; ValueError naming ``what`` otherwise."""
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return timedelta(seconds=value)


#: A prebuilt statement and its parameters. The hot statements are built once, with bound
#: parameters: building one per call (values coerced into bind parameters, a cache key
#: computed) cost about six times what running it costs on SQLite. Parameters whose names match
#: a column set it (INSERT values, UPDATE's SET); the ``w_``-prefixed ones are the WHERE's.
Bound: TypeAlias = "tuple[Executable, dict[str, Any]]"


@cache
def inserting_id(table: Table) -> Executable:
    """``INSERT INTO table (...) RETURNING id``, the columns from the parameters."""
    return insert(table).returning(table.c.id)


@cache
def _updating_id(table: Table) -> Update:
    return update(table).where(table.c.id == bindparam("w_id"))


def dialect_insert(dialect: str, table: Table) -> Insert:
    """``dialect``'s INSERT (for ``ON CONFLICT``), its module imported on first use."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def values_of(row: Row[Any]) -> dict[str, Any]:
    """A row as ``{column: value}``, for a record's ``model_validate``."""
    return dict(row._mapping)


class Database:
    """The engine, the clock and the before-transaction hook: one per store, shared by its parts.

    On a SQLite file the parts' transactions run inline on the event loop (``InlineSqlite``);
    ``engine`` (aiosqlite) is then only for the schema and for tools."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.before: Hook | None = None  # set by Store.before_each_transaction, after the parts exist
        self._clock = clock
        self.offset = timedelta(0)  # the database's clock minus this process's (sync_clock)
        self._writer = engine.execution_options(**write_options(engine.dialect.name))
        self.inline = InlineSqlite.of(engine.url)

    @property
    def statement_engine(self) -> Engine:
        """The engine whose events see every statement the parts run (tests hook failures there)."""
        return self.inline.engine if self.inline is not None else self.engine.sync_engine

    def now(self) -> datetime:
        value = self._clock()
        if value.tzinfo is None:
            raise ValueError("store clock returned a naive datetime")
        return value + self.offset

    def read(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A connection for reads (SQLite: a deferred transaction, so WAL readers never wait)."""
        return self._connection(write=False)

    def write(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed when the block ends."""
        return self._connection(write=True)

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[Conn]:
        if self.before is not None:  # the hook waits before the pool is asked, so before any lock
            await self.before()
        if self.inline is not None:
            async with self.inline.write() if write else self.inline.read() as inline:
                yield inline
            return
        async with self._writer.begin() if write else self.engine.connect() as conn:
            yield conn

    def insert(self, table: Table) -> Insert:
        """The dialect's INSERT (for ``ON CONFLICT``), its module imported on first use."""
        return dialect_insert(self.dialect, table)


class Part:
    """One kind of state of the store (``store.mutes``...): its queries, on the shared database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _now(self) -> datetime:
        return self._db.now()

    def _read(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        return self._db.read()

    def _write(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        return self._db.write()

    def _insert(self, table: Table) -> Insert:
        return self._db.insert(table)

    async def _first(self, query: Select[Any], make: Callable[[dict[str, Any]], T]) -> T | None:
        """The query's first row made into a record (``make(values)``), or None."""
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else make(values_of(row))

    async def _all(self, query: Select[Any], make: Callable[[dict[str, Any]], T]) -> list[T]:
        """Every row of the query, each made into a record (``make(values)``)."""
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [make(values_of(row)) for row in rows]

    async def _changed(self, stmt: Update | Delete | Bound) -> int:
        """Run ``stmt`` (or a prebuilt statement with its parameters) in a write transaction;
        the rows it changed."""
        statement, params = stmt if isinstance(stmt, tuple) else (stmt, None)
        async with self._write() as conn:
            return (await conn.execute(statement, params)).rowcount

    async def _add_row(self, table: Table, values: Mapping[str, Any]) -> int:
        """Insert one row into a table with an ``id`` column; returns the new ``id``."""
        async with self._write() as conn:
            new_id = (await conn.execute(inserting_id(table), dict(values))).scalar_one()
        return int(new_id)

    async def _update_row(self, table: Table, row_id: int, values: Mapping[str, Any]) -> bool:
        """Change the row with this ``id``; returns whether it exists."""
        if not values:
            raise TypeError(f"nothing to change in {table.name} row {row_id}")
        return await self._changed((_updating_id(table), {**values, "w_id": row_id})) > 0
