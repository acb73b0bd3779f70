"""Followups: executions the bot keeps polling to report how a resume/rerun ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Column, Float, Index, Text, func, select

from bot.store.base import Part, validated_changes
from bot.store.schema import BigId, Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

followups = table(
    "followups",
    id_column(),
    Column("execution_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("action_id", BigId),
    Column("channel_id", Text, nullable=False),
    Column("summary_ts", Text, nullable=False),
    Column("alert_channel_id", Text),
    Column("alert_ts", Text),
    Column("actor_id", Text),
    Column("status", Text, nullable=False),
    Column("next_poll_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("interval", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # The last cancel/pause/resume from Slack on the followed execution: its summary says who.
    Column("control_verb", Text),
    Column("control_by", Text),
    Column("control_at", UTCDateTime),
    Index("ix_followups_due", "finished_at", "next_poll_at"),
    Index("ix_followups_execution", "execution_id"),
)


class FollowupRecord(Record):
    """An execution being followed, and the Slack message(s) to update as it progresses."""

    id: int | None = None
    execution_id: str
    kind: str
    event_id: str
    action_id: int | None = None
    channel_id: str
    summary_ts: str
    alert_channel_id: str | None = None
    alert_ts: str | None = None
    actor_id: str | None = None
    status: str = "RUNNING"
    next_poll_at: UTCDatetime
    deadline_at: UTCDatetime
    interval: float = Field(default=5.0, gt=0)
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None
    control_verb: str | None = None  # the last cancel/pause/resume-execution from Slack
    control_by: str | None = None  # who asked (a Slack user id)
    control_at: UTCDatetime | None = None


class Followups(Part):
    """``store.followups``: the executions followed, and when each is due for a poll."""

    async def add(self, record: FollowupRecord) -> int:
        return await self._add_row(followups, record.model_dump(exclude={"id"}))

    async def due(self, now: datetime | None = None, limit: int = 100) -> list[FollowupRecord]:
        """Unfinished followups with ``next_poll_at <= now``, earliest first."""
        when = self._now() if now is None else now
        query = (
            select(followups)
            .where(followups.c.finished_at.is_(None), followups.c.next_poll_at <= when)
            .order_by(followups.c.next_poll_at, followups.c.id)
            .limit(limit)
        )
        return await self._all(query, FollowupRecord.model_validate)

    async def update(self, fid: int, **changes: Any) -> bool:
        """Update fields (status, next_poll_at, interval, finished_at, ...). Returns whether
        the row exists."""
        values = validated_changes(FollowupRecord, changes, {"id", "created_at"})
        if not values:
            return await self.get(fid) is not None
        return await self._update_row(followups, fid, values)

    async def active_count(self) -> int:
        query = select(func.count()).select_from(followups).where(followups.c.finished_at.is_(None))
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def get(self, fid: int) -> FollowupRecord | None:
        return await self._first(select(followups).where(followups.c.id == fid), FollowupRecord.model_validate)

    async def open_for_execution(self, execution_id: str) -> FollowupRecord | None:
        """The newest unfinished followup of ``execution_id`` (its summary shows controls)."""
        query = (
            select(followups)
            .where(followups.c.execution_id == execution_id, followups.c.finished_at.is_(None))
            .order_by(followups.c.id.desc())
            .limit(1)
        )
        return await self._first(query, FollowupRecord.model_validate)
