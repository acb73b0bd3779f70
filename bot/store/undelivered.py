"""Undelivered alerts: those Slack refused for good (the bot is not in the channel, it was
archived...), kept and retried with backoff for a bounded time while the watcher's cursor moves on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, Text, delete, func, select

from bot.store.base import Part
from bot.store.schema import Record, UTCDateTime, UTCDatetime, table

# Since schema v2.
undelivered_alerts = table(
    "undelivered_alerts",
    Column("key", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer),
    Column("channel_id", Text, nullable=False),
    Column("thread_ts", Text),
    Column("mention", Text),
    Column("reason", Text, nullable=False),
    Column("tries", Integer, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("next_try_at", UTCDateTime, nullable=False),
    Column("give_up_at", UTCDateTime, nullable=False),
    Index("ix_undelivered_due", "next_try_at"),
)


class UndeliveredAlert(Record):
    """An alert Slack refused for good; retried with backoff until ``give_up_at``."""

    key: str
    kind: str
    event_id: str
    execution_index: int | None = None
    channel_id: str
    thread_ts: str | None = None
    mention: str | None = None
    reason: str
    tries: int = 1
    first_at: UTCDatetime
    next_try_at: UTCDatetime
    give_up_at: UTCDatetime


class Undelivered(Part):
    """``store.undelivered``: alerts held for another try, and how many wait per channel."""

    async def hold(self, record: UndeliveredAlert) -> None:
        """Keep (or update) an alert Slack refused, to be retried."""
        values = record.model_dump()
        ins = self._insert(undelivered_alerts).values(**values)
        stmt = ins.on_conflict_do_update(
            index_elements=[undelivered_alerts.c.key],
            set_={name: ins.excluded[name] for name in ("reason", "tries", "next_try_at")},
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def due(self, now: datetime, limit: int = 20) -> list[UndeliveredAlert]:
        query = (
            select(undelivered_alerts)
            .where(undelivered_alerts.c.next_try_at <= now)
            .order_by(undelivered_alerts.c.next_try_at)
            .limit(limit)
        )
        return await self._all(query, UndeliveredAlert.model_validate)

    async def drop(self, key: str) -> None:
        await self._changed(delete(undelivered_alerts).where(undelivered_alerts.c.key == key))

    async def by_channel(self) -> dict[tuple[str, str], int]:
        """(channel, reason) -> how many alerts wait for it."""
        query = select(undelivered_alerts.c.channel_id, undelivered_alerts.c.reason, func.count()).group_by(
            undelivered_alerts.c.channel_id, undelivered_alerts.c.reason
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {(row[0], row[1]): int(row[2]) for row in rows}
