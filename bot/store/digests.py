"""Digests: one message listing many failures of one channel (a storm). Each row is saved as an
alert too, in the same transaction, so a failure is alerted once whichever way it was shown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import JSON, Column, Index, Integer, Text, UniqueConstraint, delete, func, select, update

from bot.store.alerts import alerts
from bot.store.base import Part, values_of
from bot.store.conn import Conn
from bot.store.schema import NO_EXECUTION_INDEX, BigId, Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

# v5: storms. A digest is one message listing many failures of one channel; each row is also an
# alert (``alerts.ts`` is the digest's ts), so "already alerted", the audit trail and the
# follow-through find it like any alert. ``version`` counts changes, ``drawn`` the one Slack shows.
digests = table(
    "digests",
    id_column(),
    Column("channel_id", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),  # the newest row's arrival
    Column("version", Integer, nullable=False, server_default="1"),
    Column("drawn", Integer, nullable=False, server_default="1"),
    Column("mention", Text),  # the routes' mentions it was posted with, kept when redrawn
    Column("closed_at", UTCDateTime),  # takes no more failures (Slack refused to redraw it)
    UniqueConstraint("channel_id", "ts", name="uq_digests_message"),
    Index("ix_digests_channel", "channel_id", "updated_at"),
)

digest_rows = table(
    "digest_rows",
    id_column(),
    Column("digest_id", BigId, nullable=False),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer, nullable=False),  # NO_EXECUTION_INDEX for "none"
    Column("facts", JSON, nullable=False),  # what the row shows: the event as read, why it failed
    Column("state", JSON),  # what happened to it since (an action and its outcome); None: nothing
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("digest_id", "kind", "event_id", name="uq_digest_rows_event"),
)


class DigestRecord(Record):
    """One digest message: many failures of one channel, posted as one (a storm)."""

    id: int | None = None
    channel_id: str
    ts: str
    created_at: UTCDatetime
    updated_at: UTCDatetime  # when the newest row arrived
    version: int = 1  # bumped by every change to its rows
    drawn: int = 1  # the version Slack shows
    mention: str | None = None  # the routes' mentions it was posted with
    closed_at: UTCDatetime | None = None  # takes no more failures


class DigestRow(Record):
    """One failure listed in a digest; it is an alert too (same channel and ts).

    ``facts`` and ``state`` are the core's and the renderer's business (JSON objects): what the
    row shows about the failure, and what happened to it since (None: nothing yet)."""

    id: int | None = None
    digest_id: int = 0
    kind: str
    event_id: str
    execution_index: int | None = Field(default=None, ge=0)
    facts: dict[str, Any]
    state: dict[str, Any] | None = None
    added_at: UTCDatetime = Field(default_factory=utcnow)


def _index(value: int | None) -> int:
    return NO_EXECUTION_INDEX if value is None else value


def _row(values: dict[str, Any]) -> DigestRow:
    if values["execution_index"] == NO_EXECUTION_INDEX:
        values["execution_index"] = None
    return DigestRow.model_validate(values)


class Digests(Part):
    """``store.digests``: digests, their rows, and which version of each Slack shows."""

    async def channel_load(
        self, channel_id: str, *, since: datetime, opened_since: datetime
    ) -> tuple[int, DigestRecord | None]:
        """How many top-level alerts ``channel_id`` got since ``since`` (digest rows included), and
        its newest open digest that took a row since then and was posted since ``opened_since``
        (where more failures go), if any."""
        count = (
            select(func.count())
            .select_from(alerts)
            .where(alerts.c.channel_id == channel_id, alerts.c.thread_ts.is_(None), alerts.c.created_at >= since)
        )
        newest = (
            select(digests)
            .where(
                digests.c.channel_id == channel_id,
                digests.c.updated_at >= since,
                digests.c.created_at >= opened_since,
                digests.c.closed_at.is_(None),
            )
            .order_by(digests.c.updated_at.desc(), digests.c.id.desc())
            .limit(1)
        )
        async with self._read() as conn:
            recent = int((await conn.execute(count)).scalar_one())
            row = (await conn.execute(newest)).first()
        return recent, None if row is None else DigestRecord.model_validate(values_of(row))

    async def save(self, record: DigestRecord, rows: Sequence[DigestRow]) -> int:
        """A digest just posted, its rows, and an alert per row, in one transaction; its id."""
        values = record.model_dump(exclude={"id"})
        async with self._write() as conn:
            inserted = await conn.execute(digests.insert().values(**values).returning(digests.c.id))
            digest_id = int(inserted.scalar_one())
            await self._insert_rows(conn, digest_id, record.channel_id, record.ts, rows)
        return digest_id

    async def add_rows(self, digest: DigestRecord, rows: Sequence[DigestRow], *, max_rows: int) -> int:
        """More failures listed in an open digest (to be redrawn), as many as fit in ``max_rows``
        (counted in the same transaction, the digest row locked: two replicas adding at once
        never overfill it); how many were taken, the first ones. None when it is closed."""
        assert digest.id is not None
        lock = select(digests.c.closed_at).where(digests.c.id == digest.id)
        if self._db.dialect == "postgresql":
            lock = lock.with_for_update()
        counted = select(func.count()).select_from(digest_rows).where(digest_rows.c.digest_id == digest.id)
        async with self._write() as conn:
            state = (await conn.execute(lock)).first()
            if state is None or state[0] is not None:
                return 0
            room = max_rows - int((await conn.execute(counted)).scalar_one())
            taken = list(rows[: max(0, room)])
            if taken:
                await self._insert_rows(conn, digest.id, digest.channel_id, digest.ts, taken)
                await self._bump(conn, digest.id, updated_at=self._now())
            return len(taken)

    async def close(self, digest: DigestRecord, rows: Sequence[DigestRow]) -> None:
        """Slack will not show this digest's changes any more (deleted, archived...): it takes no
        more failures, and ``rows`` (just added, never shown) leave it, alerts included, so they
        can be listed elsewhere."""
        assert digest.id is not None
        async with self._write() as conn:
            await conn.execute(update(digests).where(digests.c.id == digest.id).values(closed_at=self._now()))
            for row in rows:
                await conn.execute(
                    delete(digest_rows).where(
                        digest_rows.c.digest_id == digest.id,
                        digest_rows.c.kind == row.kind,
                        digest_rows.c.event_id == row.event_id,
                    )
                )
                await conn.execute(
                    delete(alerts).where(
                        alerts.c.channel_id == digest.channel_id,
                        alerts.c.ts == digest.ts,
                        alerts.c.kind == row.kind,
                        alerts.c.event_id == row.event_id,
                    )
                )

    async def _insert_rows(self, conn: Conn, digest_id: int, channel: str, ts: str, rows: Sequence[DigestRow]) -> None:
        now = self._now()
        for row in rows:
            values = row.model_dump(exclude={"id", "digest_id", "execution_index"})
            index = _index(row.execution_index)
            await conn.execute(
                self._insert(digest_rows)
                .values(**values, digest_id=digest_id, execution_index=index)
                .on_conflict_do_nothing(
                    index_elements=[digest_rows.c.digest_id, digest_rows.c.kind, digest_rows.c.event_id]
                )
            )
            await conn.execute(
                self._insert(alerts)
                .values(
                    kind=row.kind,
                    event_id=row.event_id,
                    execution_index=index,
                    channel_id=channel,
                    ts=ts,
                    created_at=now,
                    repeats=0,
                )
                .on_conflict_do_nothing(index_elements=[alerts.c.kind, alerts.c.event_id, alerts.c.execution_index])
            )

    async def _bump(self, conn: Conn, digest_id: int, **changes: Any) -> int:
        stmt = (
            update(digests)
            .where(digests.c.id == digest_id)
            .values(version=digests.c.version + 1, **changes)
            .returning(digests.c.version)
        )
        return int((await conn.execute(stmt)).scalar_one())

    async def at(self, channel_id: str, ts: str) -> DigestRecord | None:
        """The digest posted as message ``ts``, if that message is one."""
        query = select(digests).where(digests.c.channel_id == channel_id, digests.c.ts == ts)
        return await self._first(query, DigestRecord.model_validate)

    async def get(self, digest_id: int) -> tuple[DigestRecord, list[DigestRow]] | None:
        """A digest and its rows in the order they were added (read together, for a redraw)."""
        async with self._read() as conn:
            head = (await conn.execute(select(digests).where(digests.c.id == digest_id))).first()
            if head is None:
                return None
            query = select(digest_rows).where(digest_rows.c.digest_id == digest_id).order_by(digest_rows.c.id)
            rows = (await conn.execute(query)).all()
        return DigestRecord.model_validate(values_of(head)), [_row(values_of(r)) for r in rows]

    async def set_row_state(self, digest_id: int, kind: str, event_id: str, state: dict[str, Any]) -> int | None:
        """What happened to one row; the digest's new version (None: no such row)."""
        where = (digest_rows.c.digest_id == digest_id, digest_rows.c.kind == kind, digest_rows.c.event_id == event_id)
        async with self._write() as conn:
            changed = await conn.execute(update(digest_rows).where(*where).values(state=state))
            if not changed.rowcount:
                return None
            return await self._bump(conn, digest_id)

    async def mark_drawn(self, digest_id: int, version: int) -> None:
        """Slack shows ``version`` now (a later one, drawn meanwhile, is kept)."""
        stmt = update(digests).where(digests.c.id == digest_id, digests.c.drawn < version).values(drawn=version)
        await self._changed(stmt)

    async def undrawn(self, limit: int = 20) -> list[int]:
        """Digests whose last change Slack does not show yet (a redraw failed): to draw again."""
        query = select(digests.c.id).where(digests.c.drawn < digests.c.version).order_by(digests.c.id).limit(limit)
        async with self._read() as conn:
            return [int(r[0]) for r in (await conn.execute(query)).all()]
