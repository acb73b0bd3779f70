"""What every part of the store shares: the engine, the clock, and the checks on arguments.

The store is one class (:class:`bot.store.Store`) assembled from a part per kind of state
(claims, actions, alerts, followups, liveness, cursors); each part derives from
:class:`StoreBase`, which holds the engine and the clock they all use. "now" always comes
from the store's clock (Python side) and is compared in the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Table, insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.engine import WRITE_OPTIONS
from bot.store.schema import utcnow

if TYPE_CHECKING:  # each dialect's module is imported only by a store on that database
    from sqlalchemy.dialects import postgresql, sqlite

Clock = Callable[[], datetime]
Insert: TypeAlias = "postgresql.Insert | sqlite.Insert"


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


class StoreBase:
    """The engine and the clock; the parts of :class:`bot.store.Store` build on it."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**WRITE_OPTIONS)  # SQLite: BEGIN IMMEDIATE
        self._before: Callable[[], Awaitable[None]] | None = None
        self._clock = clock
        self._dialect = engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def before_each_transaction(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` before each connection is taken from the pool (once per transaction or
        read, before any lock is held): the bot's acks-first turn (``bot.core.foreground``)."""
        self._before = hook

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (SQLite: a deferred transaction, so WAL readers never wait)."""
        if self._before is not None:
            await self._before()
        async with self._engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed when the block ends."""
        if self._before is not None:
            await self._before()
        async with self._writer.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self._dialect

    def now(self) -> datetime:
        value = self._clock()
        if value.tzinfo is None:
            raise ValueError("store clock returned a naive datetime")
        return value

    def _insert(self, table: Table) -> Insert:
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    async def _add_row(self, table: Table, values: Mapping[str, Any]) -> int:
        """Insert one row into a table with an ``id`` column; returns the new ``id``."""
        async with self._write() as conn:
            new_id = (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()
        return int(new_id)

    async def _update_row(self, table: Table, row_id: int, values: Mapping[str, Any]) -> bool:
        """Change the row with this ``id``; returns whether it exists."""
        async with self._write() as conn:
            result = await conn.execute(update(table).where(table.c.id == row_id).values(**values))
        return result.rowcount > 0

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))
