"""Subscriptions: alert routes a channel added itself (``/codestream subscribe``). Shared by
replicas; the watcher reads the live ones once a cycle, the core decides what matches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from bot.store.base import StoreBase
from bot.store.models import SubscriptionRecord
from bot.store.tables import subscriptions


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
