"""Approvals: which Code Stream user operations have a request posted in Slack, where, and how
they ended. One row per operation (a unique key), so a replica's second attempt finds the first."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy import Column, Index, Text, UniqueConstraint, or_, select, update

from bot.store.base import Part
from bot.store.schema import Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

# v7: Code Stream approvals (user operations) the bot posted a request for.
approvals = table(
    "approvals",
    id_column(),
    Column("operation_id", Text, nullable=False),  # the Code Stream user operation
    Column("channel_id", Text),  # where its request is posted (None until it is)
    Column("ts", Text),
    Column("status", Text, nullable=False),  # what the message shows: ACTIVE, APPROVED, REJECTED, EXPIRED, CANCELED
    Column("project", Text),
    Column("pipeline", Text),
    Column("execution_id", Text),
    Column("decided_by", Text),  # a Slack user id (decided in Slack) or Code Stream's respondedBy
    Column("decided_in", Text),  # "slack" or "codestream"
    Column("response_message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),  # set once the operation is no longer pending
    UniqueConstraint("operation_id", name="uq_approvals_operation"),
    Index("ix_approvals_open", "finished_at"),
)


class ApprovalRecord(Record):
    """A Code Stream approval (user operation) the bot posted a request for, and how it ended."""

    id: int | None = None
    operation_id: str
    channel_id: str | None = None
    ts: str | None = None
    status: str = "ACTIVE"
    project: str | None = None
    pipeline: str | None = None
    execution_id: str | None = None
    decided_by: str | None = None
    decided_in: str | None = None
    response_message: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None


class Approvals(Part):
    """``store.approvals``: one row per operation, from before its post to how it ended."""

    async def add(self, record: ApprovalRecord) -> int | None:
        """Remember an operation about to be posted; None when a row for it exists already."""
        stmt = (
            self._insert(approvals)
            .values(**record.model_dump(exclude={"id"}))
            .on_conflict_do_nothing(index_elements=[approvals.c.operation_id])
            .returning(approvals.c.id)
        )
        async with self._write() as conn:
            new_id = (await conn.execute(stmt)).scalar()
        return int(new_id) if new_id is not None else None

    async def mark_posted(self, approval_id: int, channel_id: str, ts: str) -> None:
        await self._changed(update(approvals).where(approvals.c.id == approval_id).values(channel_id=channel_id, ts=ts))

    async def forget(self, approval_id: int) -> None:
        """Its post failed: the next poll tries again."""
        await self._changed(approvals.delete().where(approvals.c.id == approval_id, approvals.c.ts.is_(None)))

    async def take_over(self, operation_id: str, *, stale_before: datetime) -> int | None:
        """A row whose request was never recorded as posted, left since before ``stale_before``
        (its poster crashed, or Slack failed in a way that raised): this caller posts it now.
        Its id, or None when there is no such row (posted, or another poster is at it)."""
        stmt = (
            update(approvals)
            .where(
                approvals.c.operation_id == operation_id,
                approvals.c.ts.is_(None),
                approvals.c.finished_at.is_(None),
                approvals.c.created_at < stale_before,
            )
            .values(created_at=self._now())
            .returning(approvals.c.id)
        )
        async with self._write() as conn:
            taken = (await conn.execute(stmt)).scalar()
        return int(taken) if taken is not None else None

    async def known_operations(self, operation_ids: list[str], *, stale_before: datetime | None = None) -> set[str]:
        """The operations that have a row, less those left unposted since before
        ``stale_before`` (to be posted again)."""
        if not operation_ids:
            return set()
        query = select(approvals.c.operation_id).where(approvals.c.operation_id.in_(operation_ids))
        if stale_before is not None:
            query = query.where(or_(approvals.c.ts.is_not(None), approvals.c.created_at >= stale_before))
        async with self._read() as conn:
            return {str(r[0]) for r in (await conn.execute(query)).all()}

    async def open(self, limit: int = 200) -> list[ApprovalRecord]:
        """Posted approvals still shown as pending, oldest first."""
        query = (
            select(approvals)
            .where(approvals.c.finished_at.is_(None), approvals.c.ts.is_not(None))
            .order_by(approvals.c.id)
            .limit(limit)
        )
        return await self._all(query, ApprovalRecord.model_validate)

    async def get(self, operation_id: str) -> ApprovalRecord | None:
        query = select(approvals).where(approvals.c.operation_id == operation_id)
        return await self._first(query, ApprovalRecord.model_validate)

    async def finish(
        self,
        operation_id: str,
        *,
        status: str,
        decided_by: str | None,
        decided_in: str,
        response_message: str | None,
        at: datetime,
    ) -> bool:
        """Record how it ended; False when it had ended already (whoever shows it, once)."""
        stmt = (
            update(approvals)
            .where(approvals.c.operation_id == operation_id, approvals.c.finished_at.is_(None))
            .values(
                status=status,
                decided_by=decided_by,
                decided_in=decided_in,
                response_message=response_message,
                finished_at=at,
            )
        )
        return bool(await self._changed(stmt))
