"""Mutes: failures of a pipeline, or of a repository's branch, that are counted but not alerted,
for a while or until a run passes. Shared by replicas; the core decides what matches."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import Boolean, Column, Index, Integer, Text, and_, false, select, update

from bot.store.base import Part
from bot.store.schema import Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

mutes = table(
    "mutes",
    id_column(),
    Column("scope", Text, nullable=False),  # "pipeline" (kind, project, pipeline) or "branch" (kind, repo, branch)
    Column("kind", Text, nullable=False),
    Column("project", Text),
    Column("pipeline", Text),
    Column("repo", Text),
    Column("branch", Text),
    Column("until", UTCDateTime, nullable=False),  # it ends by itself then (at the latest)
    Column("until_pass", Boolean, nullable=False, server_default=false()),  # ...or when a run passes
    Column("event_id", Text),  # the event it was muted from (for the audit trail)
    Column("muted_by", Text, nullable=False),
    Column("channel_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("ended_by", Text),  # a user id, "expired" is not stored (until says it), or "passed"
    Column("suppressed", Integer, nullable=False, server_default="0"),  # failures not alerted
    Index("ix_mutes_open", "ended_at"),
)


class MuteRecord(Record):
    """Failures of a pipeline (or of a repository's branch) not alerted for a while."""

    scope: str  # "pipeline" | "branch"
    kind: str
    project: str | None = None
    pipeline: str | None = None
    repo: str | None = None
    branch: str | None = None
    until: UTCDatetime  # it ends by itself then, at the latest
    until_pass: bool = False  # ...or as soon as a run of what was muted passes
    event_id: str | None = None  # the event it was muted from
    muted_by: str
    channel_id: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    ended_at: UTCDatetime | None = None
    ended_by: str | None = None
    suppressed: int = 0
    id: int | None = None


class Mutes(Part):
    """``store.mutes``: mutes added, the ones in force, and how each ended."""

    async def add(self, record: MuteRecord) -> int:
        stmt = self._insert(mutes).values(**record.model_dump(exclude={"id"})).returning(mutes.c.id)
        async with self._write() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def active(self, now: datetime) -> list[MuteRecord]:
        """Mutes not ended and not expired at ``now``, oldest first (their numbers)."""
        query = select(mutes).where(mutes.c.ended_at.is_(None), mutes.c.until > now).order_by(mutes.c.id)
        return await self._all(query, MuteRecord.model_validate)

    async def get(self, mute_id: int) -> MuteRecord | None:
        return await self._first(select(mutes).where(mutes.c.id == mute_id), MuteRecord.model_validate)

    async def end(self, mute_id: int, *, by: str, at: datetime) -> bool:
        """End a mute that is still on; False when it had ended (or expired) already."""
        stmt = (
            update(mutes)
            .where(mutes.c.id == mute_id, mutes.c.ended_at.is_(None), mutes.c.until > at)
            .values(ended_at=at, ended_by=by)
        )
        return bool(await self._changed(stmt))

    async def count_suppressed(self, mute_id: int) -> None:
        await self._changed(update(mutes).where(mutes.c.id == mute_id).values(suppressed=mutes.c.suppressed + 1))

    async def end_until_pass(self, mute_ids: list[int], at: datetime) -> int:
        """A run passed: these until-it-passes mutes end."""
        if not mute_ids:
            return 0
        stmt = (
            update(mutes)
            .where(and_(mutes.c.id.in_(mute_ids), mutes.c.ended_at.is_(None), mutes.c.until_pass.is_(True)))
            .values(ended_at=at, ended_by="passed")
        )
        return await self._changed(stmt)
