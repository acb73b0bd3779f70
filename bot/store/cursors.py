"""Cursors: small named values a replica picks up where another left off (e.g. the watcher's)."""

from __future__ import annotations

from sqlalchemy import Column, Text, select

from bot.store.base import Part
from bot.store.schema import UTCDateTime, table

cursors = table(
    "cursors",
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


class Cursors(Part):
    """``store.cursors``: named values, one row each, last write wins."""

    async def get(self, name: str) -> str | None:
        async with self._read() as conn:
            value = (await conn.execute(select(cursors.c.value).where(cursors.c.name == name))).scalar()
        return None if value is None else str(value)

    async def set(self, name: str, value: str) -> None:
        ins = self._insert(cursors).values(name=name, value=value, updated_at=self._now())
        stmt = ins.on_conflict_do_update(
            index_elements=[cursors.c.name],
            set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
        )
        async with self._write() as conn:
            await conn.execute(stmt)
