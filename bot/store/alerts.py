"""Alerts posted to Slack: one per failed event and execution, threaded by series when a failure
repeats, resolved when a fix is seen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import (
    Column,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    case,
    or_,
    select,
    update,
)

from bot.store.actions import actions
from bot.store.base import Part
from bot.store.schema import NO_EXECUTION_INDEX, Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

alerts = table(
    "alerts",
    id_column(),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer, nullable=False),  # NO_EXECUTION_INDEX for "none"
    Column("channel_id", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("thread_ts", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # v3: repeated failures. ``series`` is "kind:project:pipeline:branch"; a top-level alert of a
    # series counts the failures threaded under it (``repeats``) until a fix resolves it.
    Column("series", Text),
    Column("repeats", Integer, nullable=False, server_default="0"),
    Column("resolved_at", UTCDateTime),
    Column("mention", Text),  # the route's mention the alert was posted with, kept when redrawn
    Column("author", Text),  # the Slack user mentioned as the one who pushed
    UniqueConstraint("kind", "event_id", "execution_index", name="uq_alerts_event_execution"),
    Index("ix_alerts_message", "channel_id", "ts"),
    Index("ix_alerts_thread", "channel_id", "thread_ts"),
    Index("ix_alerts_series", "series", "created_at"),
)


class AlertRecord(Record):
    """A failure alert posted to Slack. Unique per (kind, event_id, execution_index).

    ``execution_index`` is None for a failure without an execution (the trigger failed).
    """

    kind: str
    event_id: str
    execution_index: int | None = Field(default=None, ge=0)
    channel_id: str
    ts: str
    thread_ts: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    id: int | None = None
    series: str | None = None  # "kind:project:pipeline:branch": repeated failures thread together
    repeats: int = Field(default=0, ge=0)  # failures threaded under this (top-level) alert
    resolved_at: UTCDatetime | None = None  # a fix was seen: the next failure is a new alert
    mention: str | None = None  # the route's mention it was posted with
    author: str | None = None  # the Slack user mentioned as the one who pushed


def _alert(values: dict[str, Any]) -> AlertRecord:
    if values["execution_index"] == NO_EXECUTION_INDEX:
        values["execution_index"] = None
    return AlertRecord.model_validate(values)


class Alerts(Part):
    """``store.alerts``: alerts by event, by message, by thread and by series."""

    async def save(self, record: AlertRecord) -> bool:
        """Insert the alert; False (and nothing changes) if one exists for its key."""
        values = record.model_dump(exclude={"id"})
        if values["execution_index"] is None:
            values["execution_index"] = NO_EXECUTION_INDEX
        stmt = (
            self._insert(alerts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[alerts.c.kind, alerts.c.event_id, alerts.c.execution_index])
            .returning(alerts.c.id)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def get(self, kind: str, event_id: str, execution_index: int | None) -> AlertRecord | None:
        index = NO_EXECUTION_INDEX if execution_index is None else execution_index
        query = select(alerts).where(
            alerts.c.kind == kind, alerts.c.event_id == event_id, alerts.c.execution_index == index
        )
        return await self._first(query, _alert)

    async def latest_for_event(self, kind: str, event_id: str) -> AlertRecord | None:
        query = (
            select(alerts)
            .where(alerts.c.kind == kind, alerts.c.event_id == event_id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        return await self._first(query, _alert)

    async def open_for_series(self, series: str, *, since: datetime) -> AlertRecord | None:
        """The newest top-level alert of ``series`` posted since ``since`` and not resolved:
        where a repeated failure goes (in its thread)."""
        query = (
            select(alerts)
            .where(
                alerts.c.series == series,
                alerts.c.thread_ts.is_(None),
                alerts.c.resolved_at.is_(None),
                alerts.c.created_at >= since,
            )
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        return await self._first(query, _alert)

    async def count_repeat(self, alert_id: int) -> int:
        """One more failure threaded under this alert; the new count."""
        stmt = (
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(repeats=alerts.c.repeats + 1)
            .returning(alerts.c.repeats)
        )
        async with self._write() as conn:
            count = (await conn.execute(stmt)).scalar_one_or_none()
        return int(count or 0)

    async def resolve(
        self, channel_id: str, ts: str, at: datetime, *, kind: str | None = None, event_id: str | None = None
    ) -> int:
        """A fix was seen for the alert posted as ``ts``: it and the top-level alert of its thread
        are resolved (a new failure of the series is a new alert). Rows changed.

        A storm digest is one message holding many alerts: there only the fixed event's row is
        resolved (``kind``/``event_id``), and a fix in a digest's thread never resolves the
        digest's other failures."""
        at_ts = select(alerts.c.id, alerts.c.kind, alerts.c.event_id, alerts.c.thread_ts).where(
            alerts.c.channel_id == channel_id, alerts.c.ts == ts
        )
        async with self._write() as conn:
            found = (await conn.execute(at_ts)).all()
            if len(found) > 1:  # a digest: its rows are separate failures
                ids = [r.id for r in found if r.kind == kind and r.event_id == event_id]
            else:
                ids = [r.id for r in found]
                root = found[0].thread_ts if found else None
                if root is not None:
                    roots = (
                        await conn.execute(
                            select(alerts.c.id).where(alerts.c.channel_id == channel_id, alerts.c.ts == root)
                        )
                    ).all()
                    if len(roots) == 1:  # a series' alert, not a digest
                        ids.append(roots[0].id)
            if not ids:
                return 0
            result = await conn.execute(
                update(alerts).where(alerts.c.id.in_(ids), alerts.c.resolved_at.is_(None)).values(resolved_at=at)
            )
        return int(result.rowcount or 0)

    async def has_actions(self, channel_id: str, ts: str) -> bool:
        """Whether anyone acted from the alert posted as ``ts`` (its message then shows that)."""
        query = select(actions.c.id).where(actions.c.alert_channel == channel_id, actions.c.alert_ts == ts).limit(1)
        async with self._read() as conn:
            return (await conn.execute(query)).first() is not None

    async def newest_in_thread(self, channel_id: str, thread_ts: str) -> AlertRecord | None:
        """The newest alert of the thread under ``thread_ts`` (its top-level alert included): what a
        reply in that thread acts on — the latest failure, never an older commit's."""
        query = (
            select(alerts)
            .where(alerts.c.channel_id == channel_id, or_(alerts.c.ts == thread_ts, alerts.c.thread_ts == thread_ts))
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        return await self._first(query, _alert)

    async def in_thread(self, channel_id: str, thread_ts: str, *, limit: int = 500) -> list[AlertRecord]:
        """The alerts posted in the thread under ``thread_ts`` (the repeats of its series), oldest
        first; the top-level alert itself is not among them."""
        query = (
            select(alerts)
            .where(alerts.c.channel_id == channel_id, alerts.c.thread_ts == thread_ts)
            .order_by(alerts.c.created_at, alerts.c.id)
            .limit(limit)
        )
        return await self._all(query, _alert)

    async def open_series(self, *, since: datetime) -> set[str]:
        """The series whose top-level alert, posted since ``since``, is not resolved."""
        query = (
            select(alerts.c.series)
            .where(
                alerts.c.series.is_not(None),
                alerts.c.thread_ts.is_(None),
                alerts.c.resolved_at.is_(None),
                alerts.c.created_at >= since,
            )
            .distinct()
        )
        async with self._read() as conn:
            return {str(row[0]) for row in (await conn.execute(query)).all()}

    async def resolve_series(self, series: str, *, passed_at: datetime, at: datetime) -> int:
        """A run of ``series`` passed at ``passed_at`` (a fix pushed outside the bot): its open
        alerts posted before that are resolved. Rows changed."""
        stmt = (
            update(alerts)
            .where(alerts.c.series == series, alerts.c.resolved_at.is_(None), alerts.c.created_at <= passed_at)
            .values(resolved_at=at)
        )
        return await self._changed(stmt)

    async def find_by_message(self, channel_id: str, ts: str) -> AlertRecord | None:
        """The alert posted as message ``ts``; failing that, the newest alert threaded under
        ``ts`` (``thread_ts == ts``)."""
        query = (
            select(alerts)
            .where(alerts.c.channel_id == channel_id, or_(alerts.c.ts == ts, alerts.c.thread_ts == ts))
            .order_by(case((alerts.c.ts == ts, 0), else_=1), alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        return await self._first(query, _alert)
