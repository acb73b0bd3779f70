"""Leases (one replica does a job at a time) and replica heartbeats (which replicas are alive).

A lease is taken in one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`` statement,
so it is atomic across coroutines, engines and processes on both backends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import Column, Text, case, delete, or_, select, update

from bot.store.base import Part, seconds
from bot.store.schema import UTCDateTime, table

leases = table(
    "leases",
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# v2: every running replica's heartbeat, so that work a dead replica left (intents in flight) is
# taken over by a live one without waiting for a long timeout.
replicas = table(
    "replicas",
    Column("holder", Text, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)


HolderGone = Callable[[str], Awaitable[bool]]


class Liveness(Part):
    """``store.liveness``: who holds which lease, and which replicas are alive."""

    # -- leases ---------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: float, *, holder_gone: HolderGone | None = None) -> bool:
        """Take the lease if it is free or expired, or extend it if ``holder`` already has it.
        ``holder_gone(other)``: whether the current holder is known to be dead; then the lease
        is taken over at once instead of when it expires."""
        if await self._acquire_lease(name, holder, ttl):
            return True
        if holder_gone is None:
            return False
        current = await self.lease_holder(name)
        if current is None or current[0] == holder or not await holder_gone(current[0]):
            return False
        return await self.take_over_lease(name, current[0], holder, ttl)

    async def _acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        span = seconds(ttl, "ttl")
        now = self._now()
        ins = self._insert(leases).values(name=name, holder=holder, acquired_at=now, expires_at=now + span)
        stmt = ins.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={
                "holder": ins.excluded.holder,
                "acquired_at": case(
                    (leases.c.holder == ins.excluded.holder, leases.c.acquired_at),
                    else_=ins.excluded.acquired_at,
                ),
                "expires_at": ins.excluded.expires_at,
            },
            where=or_(leases.c.expires_at <= now, leases.c.holder == ins.excluded.holder),
        ).returning(leases.c.name)
        async with self._write() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend the lease to now + ttl if ``holder`` still holds it (nobody has taken it over,
        even if it lapsed meanwhile)."""
        span = seconds(ttl, "ttl")
        now = self._now()
        stmt = update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires_at=now + span)
        return await self._changed(stmt) > 0

    async def release_lease(self, name: str, holder: str) -> bool:
        return await self._changed(delete(leases).where(leases.c.name == name, leases.c.holder == holder)) > 0

    async def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """``(holder, expires_at)`` of the unexpired lease, if any."""
        query = select(leases.c.holder, leases.c.expires_at).where(
            leases.c.name == name, leases.c.expires_at > self._now()
        )
        return await self._first(query, lambda held: (held["holder"], held["expires_at"]))

    async def take_over_lease(self, name: str, dead_holder: str, holder: str, ttl: float) -> bool:
        """Take the lease from ``dead_holder`` at once (the caller knows it is gone), if it still
        holds it."""
        now = self._now()
        stmt = (
            update(leases)
            .where(leases.c.name == name, leases.c.holder == dead_holder)
            .values(holder=holder, acquired_at=now, expires_at=now + seconds(ttl, "ttl"))
        )
        return await self._changed(stmt) > 0

    # -- replicas -------------------------------------------------------------------------

    async def heartbeat(self, holder: str) -> None:
        """Say that replica ``holder`` is alive (now)."""
        now = self._now()
        ins = self._insert(replicas).values(holder=holder, started_at=now, heartbeat_at=now)
        stmt = ins.on_conflict_do_update(
            index_elements=[replicas.c.holder], set_={"heartbeat_at": ins.excluded.heartbeat_at}
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def forget_replica(self, holder: str) -> None:
        """A replica stopping cleanly: what it leaves is taken over at once."""
        await self._changed(delete(replicas).where(replicas.c.holder == holder))

    async def replica_heartbeats(self) -> dict[str, datetime]:
        async with self._read() as conn:
            rows = (await conn.execute(select(replicas.c.holder, replicas.c.heartbeat_at))).all()
        return {row.holder: row.heartbeat_at for row in rows}

    async def purge_replicas(self, before: datetime) -> int:
        return await self._changed(delete(replicas).where(replicas.c.heartbeat_at < before))
