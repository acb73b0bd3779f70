"""Subscriptions: alert routes a channel added itself (``/codestream subscribe``). Shared by
replicas; the watcher reads the live ones once a cycle, the core decides what matches."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import Column, Index, Table, Text, select, update

from bot.store.base import StoreBase
from bot.store.schema import BigId, Record, UTCDateTime, UTCDatetime, metadata, utcnow

# v6: alert routes a channel added itself (``/codestream subscribe``), evaluated after BOT_CONFIG's
# routes. A removed one is kept (removed_at/removed_by) for the record; the audit trail has both.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel_id", Text, nullable=False),  # where matching failures are alerted
    Column("kind", Text),  # git | gerrit | docker | approval; NULL: any
    Column("project", Text),  # exact; NULL: any
    Column("pipeline", Text),  # glob
    Column("repo", Text),  # glob
    Column("branch", Text),  # glob
    Column("mention", Text),  # <!subteam^S…> or <@U…>
    Column("created_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Column("removed_by", Text),
    Index("ix_subscriptions_channel", "channel_id", "removed_at"),
)


class SubscriptionRecord(Record):
    """An alert route a channel added itself: failures matching every filter that is set go to
    ``channel_id`` (after BOT_CONFIG's routes). The core matches; the store keeps them."""

    id: int | None = None
    channel_id: str
    kind: str | None = None
    project: str | None = None
    pipeline: str | None = None
    repo: str | None = None
    branch: str | None = None
    mention: str | None = None
    created_by: str
    created_at: UTCDatetime = Field(default_factory=utcnow)
    removed_at: UTCDatetime | None = None
    removed_by: str | None = None


class SubscriptionStore(StoreBase):
    async def add_subscription(self, record: SubscriptionRecord) -> int:
        return await self._add_row(subscriptions, record.model_dump(exclude={"id"}))

    async def live_subscriptions(self, channel_id: str | None = None) -> list[SubscriptionRecord]:
        """Subscriptions not removed (of one channel, or of all), oldest first: the order they
        are evaluated in, and their numbers."""
        query = select(subscriptions).where(subscriptions.c.removed_at.is_(None))
        if channel_id is not None:
            query = query.where(subscriptions.c.channel_id == channel_id)
        async with self._read() as conn:
            rows = (await conn.execute(query.order_by(subscriptions.c.id))).all()
        return [SubscriptionRecord.model_validate(dict(row._mapping)) for row in rows]

    async def get_subscription(self, subscription_id: int) -> SubscriptionRecord | None:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else SubscriptionRecord.model_validate(dict(row._mapping))

    async def remove_subscription(self, subscription_id: int, *, by: str, at: datetime) -> bool:
        """Remove a live subscription; False when it was removed already (by someone else)."""
        stmt = (
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id, subscriptions.c.removed_at.is_(None))
            .values(removed_at=at, removed_by=by)
        )
        async with self._write() as conn:
            return bool((await conn.execute(stmt)).rowcount)
