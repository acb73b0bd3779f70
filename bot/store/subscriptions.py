"""Subscriptions: alert routes a channel added itself (``/codestream subscribe``). Shared by
replicas; the watcher reads the live ones once a cycle, the core decides what matches."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field
from sqlalchemy import Column, Index, Text, select, update

from bot.store.base import Part
from bot.store.schema import Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

# v6: alert routes a channel added itself (``/codestream subscribe``), evaluated after BOT_CONFIG's
# routes. A removed one is kept (removed_at/removed_by) for the record; the audit trail has both.
subscriptions = table(
    "subscriptions",
    id_column(),
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


class SubscriptionFilters(Record):
    """What a subscription matches (None: anything; ``project`` and ``kind`` exact, ``pipeline``,
    ``repo`` and ``branch`` globs) and whom its alerts mention. The core matches by them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str | None = None
    project: str | None = None
    pipeline: str | None = None
    repo: str | None = None
    branch: str | None = None
    mention: str | None = None

    @classmethod
    def of(cls, record: SubscriptionFilters) -> SubscriptionFilters:
        """Only the filters of a subscription (a record is filters and more)."""
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class SubscriptionRecord(SubscriptionFilters):
    """An alert route a channel added itself: failures matching every filter that is set go to
    ``channel_id`` (after BOT_CONFIG's routes). The core matches; the store keeps them."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)

    id: int | None = None
    channel_id: str
    created_by: str
    created_at: UTCDatetime = Field(default_factory=utcnow)
    removed_at: UTCDatetime | None = None
    removed_by: str | None = None


class Subscriptions(Part):
    """``store.subscriptions``: routes added, the live ones, and who removed which."""

    async def add(self, record: SubscriptionRecord) -> int:
        return await self._add_row(subscriptions, record.model_dump(exclude={"id"}))

    async def live(self, channel_id: str | None = None) -> list[SubscriptionRecord]:
        """Subscriptions not removed (of one channel, or of all), oldest first: the order they
        are evaluated in, and their numbers."""
        query = select(subscriptions).where(subscriptions.c.removed_at.is_(None))
        if channel_id is not None:
            query = query.where(subscriptions.c.channel_id == channel_id)
        return await self._all(query.order_by(subscriptions.c.id), SubscriptionRecord.model_validate)

    async def get(self, subscription_id: int) -> SubscriptionRecord | None:
        query = select(subscriptions).where(subscriptions.c.id == subscription_id)
        return await self._first(query, SubscriptionRecord.model_validate)

    async def remove(self, subscription_id: int, *, by: str, at: datetime) -> bool:
        """Remove a live subscription; False when it was removed already (by someone else)."""
        stmt = (
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id, subscriptions.c.removed_at.is_(None))
            .values(removed_at=at, removed_by=by)
        )
        return bool(await self._changed(stmt))
