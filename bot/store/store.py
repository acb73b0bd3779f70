"""The state store: one code path for SQLite and PostgreSQL (SQLAlchemy 2 Core, async).

Claims and leases are single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``
statements, so they are atomic across coroutines, engines and processes on both backends.
"now" always comes from the store's clock (Python side) and is compared in the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Row, Table, and_, case, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.engine import WRITE_OPTIONS
from bot.store.models import (
    OPEN_STATUSES,
    ActionRecord,
    AlertRecord,
    Claim,
    FollowupRecord,
    UndeliveredAlert,
    utcnow,
)
from bot.store.tables import (
    NO_EXECUTION_INDEX,
    actions,
    alerts,
    claims,
    cursors,
    followups,
    leases,
    replicas,
    undelivered_alerts,
)

Clock = Callable[[], datetime]
HolderGone = Callable[[str], Awaitable[bool]]
_Insert = postgresql.Insert | sqlite.Insert

# An action whose outcome nobody knows yet: pending or unknown, and not finished (an "unknown"
# that could not be confirmed by its deadline is finished, and stays "unknown").
_OPEN = and_(actions.c.status.in_(OPEN_STATUSES), actions.c.finished_at.is_(None))

# A claim can vanish (released) between our failed insert and the read-back; then try again.
_CLAIM_ATTEMPTS = 5


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:  # constraints/validators pydantic moved off the annotation
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


def _validated_changes(
    model: type[BaseModel], changes: Mapping[str, Any], frozen: set[str]
) -> dict[str, Any]:
    unknown = set(changes) - (set(model.model_fields) - frozen)
    if unknown:
        raise TypeError(f"cannot update {model.__name__} field(s): {', '.join(sorted(unknown))}")
    return {name: _field_adapter(model, name).validate_python(value) for name, value in changes.items()}


def _seconds(value: float, what: str) -> timedelta:
    if value <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return timedelta(seconds=value)


def _alert(row: Row[Any]) -> AlertRecord:
    values = dict(row._mapping)
    if values["execution_index"] == NO_EXECUTION_INDEX:
        values["execution_index"] = None
    return AlertRecord.model_validate(values)


class Store:
    """State shared by the bot's replicas. Create with :func:`bot.store.open_store`."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**WRITE_OPTIONS)  # SQLite: BEGIN IMMEDIATE
        self._clock = clock
        self._dialect = engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._dialect

    def now(self) -> datetime:
        value = self._clock()
        if value.tzinfo is None:
            raise ValueError("store clock returned a naive datetime")
        return value

    def _insert(self, table: Table) -> _Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # -- claims ---------------------------------------------------------------------------

    async def claim(self, key: str, holder: str, window: float, data: dict[str, Any] | None = None) -> Claim:
        """The first caller for ``key`` within ``window`` seconds wins (``won=True``); everyone
        else gets the current winner's claim (``won=False``), including a repeat call by the
        same holder. Once the claim expires the next caller wins and replaces it.
        Holders should be unique per attempt (e.g. a request id)."""
        span = _seconds(window, "window")
        for _ in range(_CLAIM_ATTEMPTS):
            now = self.now()
            ins = self._insert(claims).values(
                key=key, holder=holder, claimed_at=now, expires_at=now + span, data=data or {}
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[claims.c.key],
                set_={
                    "holder": ins.excluded.holder,
                    "claimed_at": ins.excluded.claimed_at,
                    "expires_at": ins.excluded.expires_at,
                    "data": ins.excluded.data,
                },
                where=claims.c.expires_at <= now,
            ).returning(*claims.c)
            async with self._writer.begin() as conn:
                row = (await conn.execute(stmt)).first()
                won = row is not None
                if row is None:
                    row = (await conn.execute(select(claims).where(claims.c.key == key))).first()
            if row is not None:
                return Claim(
                    key=row.key,
                    holder=row.holder,
                    won=won,
                    claimed_at=row.claimed_at,
                    expires_at=row.expires_at,
                    data=dict(row.data or {}),
                )
        raise RuntimeError(f"claim {key!r}: could not settle after {_CLAIM_ATTEMPTS} attempts")

    async def get_claim(self, key: str) -> Claim | None:
        """The unexpired claim on ``key`` (``won=False``), if any."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(claims).where(claims.c.key == key, claims.c.expires_at > self.now())
                )
            ).first()
        if row is None:
            return None
        return Claim(row.key, row.holder, False, row.claimed_at, row.expires_at, dict(row.data or {}))

    async def update_claim_data(self, key: str, holder: str, data: dict[str, Any]) -> bool:
        """Replace the claim's data if ``holder`` still owns it. Returns whether it did."""
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(claims).where(claims.c.key == key, claims.c.holder == holder).values(data=data)
            )
        return result.rowcount > 0

    async def release_claim(self, key: str, holder: str) -> bool:
        """Drop the claim if ``holder`` owns it, so the next caller wins at once."""
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(claims).where(claims.c.key == key, claims.c.holder == holder))
        return result.rowcount > 0

    async def settle_claim(self, key: str, holder: str, window: float) -> bool:
        """The action behind the claim has ended: keep the claim ``window`` more seconds (the
        dedupe window) from now, then let it lapse. Returns whether ``holder`` still owned it."""
        expires = self.now() + _seconds(window, "window")
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(claims).where(claims.c.key == key, claims.c.holder == holder).values(expires_at=expires)
            )
        return result.rowcount > 0

    async def inflight_claims(
        self, prefix: str, *, claimed_before: datetime, expiring_after: datetime
    ) -> list[Claim]:
        """Claims on keys starting with ``prefix``, taken before ``claimed_before`` and still
        held past ``expiring_after`` (that is: in flight, not in their dedupe window)."""
        query = select(claims).where(
            claims.c.key.startswith(prefix, autoescape=True),
            claims.c.claimed_at < claimed_before,
            claims.c.expires_at > expiring_after,
        ).limit(500)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Claim(r.key, r.holder, False, r.claimed_at, r.expires_at, dict(r.data or {})) for r in rows]

    async def purge_expired_claims(self, older_than: float = 0.0) -> int:
        """Delete claims that expired more than ``older_than`` seconds ago. Returns the count."""
        cutoff = self.now() - timedelta(seconds=older_than)
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(claims).where(claims.c.expires_at <= cutoff))
        return result.rowcount

    # -- actions --------------------------------------------------------------------------

    async def record_action(self, record: ActionRecord) -> int:
        values = record.model_dump(exclude={"id"})
        async with self._writer.begin() as conn:
            action_id = (
                await conn.execute(insert(actions).values(**values).returning(actions.c.id))
            ).scalar_one()
        return int(action_id)

    async def update_action(self, action_id: int, **changes: Any) -> bool:
        """Update fields (status, execution_link, execution_id, error, error_class, finished_at,
        duplicate_of, ...). Unknown fields raise TypeError. Returns whether the row exists."""
        values = _validated_changes(ActionRecord, changes, {"id", "created_at"})
        if not values:
            return await self.get_action(action_id) is not None
        async with self._writer.begin() as conn:
            result = await conn.execute(update(actions).where(actions.c.id == action_id).values(**values))
        return result.rowcount > 0

    async def update_open_action(self, action_id: int, owner: str, **changes: Any) -> bool:
        """Update an action whose outcome is still open (pending / unknown) and that ``owner``
        finishes. False when it was settled or taken over meanwhile: then leave it alone."""
        values = _validated_changes(ActionRecord, changes, {"id", "created_at"})
        stmt = (
            update(actions)
            .where(actions.c.id == action_id, actions.c.owner == owner, _OPEN)
            .values(**values)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(stmt)
        return result.rowcount > 0

    async def take_over_action(self, action_id: int, owner: str | None, new_owner: str) -> bool:
        """Make ``new_owner`` responsible for an open action its ``owner`` left (it died, or
        stopped). Atomic: of several replicas trying at once, one wins."""
        owned = actions.c.owner.is_(None) if owner is None else actions.c.owner == owner
        stmt = (
            update(actions)
            .where(actions.c.id == action_id, owned, _OPEN)
            .values(owner=new_owner)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(stmt)
        return result.rowcount > 0

    async def actions_by_request(self, request_id: str) -> list[ActionRecord]:
        query = select(actions).where(actions.c.request_id == request_id).limit(20)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]

    async def open_actions(self, limit: int = 500) -> list[ActionRecord]:
        """Actions whose outcome is not known yet (pending / unknown), oldest first."""
        query = (
            select(actions)
            .where(_OPEN)
            .order_by(actions.c.created_at, actions.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]

    async def purge_actions(self, before: datetime) -> int:
        """Delete finished audit rows created before ``before`` (retention). Open ones stay."""
        stmt = delete(actions).where(actions.c.created_at < before, ~_OPEN)
        async with self._writer.begin() as conn:
            result = await conn.execute(stmt)
        return result.rowcount

    async def get_action(self, action_id: int) -> ActionRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(actions).where(actions.c.id == action_id))).first()
        return None if row is None else ActionRecord.model_validate(dict(row._mapping))

    async def list_actions(
        self,
        *,
        since: datetime | None = None,
        event_id: str | None = None,
        actor_id: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ActionRecord]:
        """Actions newest first, optionally only those created at/after ``since``."""
        query = select(actions)
        if since is not None:
            query = query.where(actions.c.created_at >= since)
        if event_id is not None:
            query = query.where(actions.c.event_id == event_id)
        if actor_id is not None:
            query = query.where(actions.c.actor_id == actor_id)
        if kind is not None:
            query = query.where(actions.c.kind == kind)
        query = query.order_by(actions.c.created_at.desc(), actions.c.id.desc()).limit(limit).offset(offset)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]

    # -- alerts ---------------------------------------------------------------------------

    async def save_alert(self, record: AlertRecord) -> bool:
        """Insert the alert; False (and nothing changes) if one exists for its key."""
        values = record.model_dump(exclude={"id"})
        if values["execution_index"] is None:
            values["execution_index"] = NO_EXECUTION_INDEX
        stmt = (
            self._insert(alerts)
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[alerts.c.kind, alerts.c.event_id, alerts.c.execution_index]
            )
            .returning(alerts.c.id)
        )
        async with self._writer.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def get_alert(self, kind: str, event_id: str, execution_index: int | None) -> AlertRecord | None:
        index = NO_EXECUTION_INDEX if execution_index is None else execution_index
        query = select(alerts).where(
            alerts.c.kind == kind, alerts.c.event_id == event_id, alerts.c.execution_index == index
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _alert(row)

    async def latest_alert_for_event(self, kind: str, event_id: str) -> AlertRecord | None:
        query = (
            select(alerts)
            .where(alerts.c.kind == kind, alerts.c.event_id == event_id)
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _alert(row)

    async def find_alert_by_message(self, channel_id: str, ts: str) -> AlertRecord | None:
        """The alert posted as message ``ts``; failing that, the newest alert threaded under
        ``ts`` (``thread_ts == ts``)."""
        query = (
            select(alerts)
            .where(alerts.c.channel_id == channel_id, or_(alerts.c.ts == ts, alerts.c.thread_ts == ts))
            .order_by(case((alerts.c.ts == ts, 0), else_=1), alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _alert(row)

    # -- followups ------------------------------------------------------------------------

    async def add_followup(self, record: FollowupRecord) -> int:
        values = record.model_dump(exclude={"id"})
        async with self._writer.begin() as conn:
            fid = (
                await conn.execute(insert(followups).values(**values).returning(followups.c.id))
            ).scalar_one()
        return int(fid)

    async def due_followups(self, now: datetime | None = None, limit: int = 100) -> list[FollowupRecord]:
        """Unfinished followups with ``next_poll_at <= now``, earliest first."""
        when = self.now() if now is None else now
        query = (
            select(followups)
            .where(followups.c.finished_at.is_(None), followups.c.next_poll_at <= when)
            .order_by(followups.c.next_poll_at, followups.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [FollowupRecord.model_validate(dict(row._mapping)) for row in rows]

    async def update_followup(self, fid: int, **changes: Any) -> bool:
        """Update fields (status, next_poll_at, interval, finished_at, ...). Returns whether
        the row exists."""
        values = _validated_changes(FollowupRecord, changes, {"id", "created_at"})
        if not values:
            return await self.get_followup(fid) is not None
        async with self._writer.begin() as conn:
            result = await conn.execute(update(followups).where(followups.c.id == fid).values(**values))
        return result.rowcount > 0

    async def active_followups_count(self) -> int:
        query = select(func.count()).select_from(followups).where(followups.c.finished_at.is_(None))
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def get_followup(self, fid: int) -> FollowupRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(followups).where(followups.c.id == fid))).first()
        return None if row is None else FollowupRecord.model_validate(dict(row._mapping))

    # -- leases ---------------------------------------------------------------------------

    async def acquire_lease(
        self, name: str, holder: str, ttl: float, *, holder_gone: HolderGone | None = None
    ) -> bool:
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
        span = _seconds(ttl, "ttl")
        now = self.now()
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
        async with self._writer.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def renew_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Extend the lease to now + ttl if ``holder`` still holds it (nobody has taken it over,
        even if it lapsed meanwhile)."""
        span = _seconds(ttl, "ttl")
        now = self.now()
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=now + span)
            )
        return result.rowcount > 0

    async def release_lease(self, name: str, holder: str) -> bool:
        async with self._writer.begin() as conn:
            result = await conn.execute(
                delete(leases).where(leases.c.name == name, leases.c.holder == holder)
            )
        return result.rowcount > 0

    async def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """``(holder, expires_at)`` of the unexpired lease, if any."""
        query = select(leases.c.holder, leases.c.expires_at).where(
            leases.c.name == name, leases.c.expires_at > self.now()
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else (row.holder, row.expires_at)

    async def take_over_lease(self, name: str, dead_holder: str, holder: str, ttl: float) -> bool:
        """Take the lease from ``dead_holder`` at once (the caller knows it is gone), if it still
        holds it."""
        now = self.now()
        stmt = (
            update(leases)
            .where(leases.c.name == name, leases.c.holder == dead_holder)
            .values(holder=holder, acquired_at=now, expires_at=now + _seconds(ttl, "ttl"))
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(stmt)
        return result.rowcount > 0

    # -- replicas -------------------------------------------------------------------------

    async def heartbeat(self, holder: str) -> None:
        """Say that replica ``holder`` is alive (now)."""
        now = self.now()
        ins = self._insert(replicas).values(holder=holder, started_at=now, heartbeat_at=now)
        stmt = ins.on_conflict_do_update(
            index_elements=[replicas.c.holder], set_={"heartbeat_at": ins.excluded.heartbeat_at}
        )
        async with self._writer.begin() as conn:
            await conn.execute(stmt)

    async def forget_replica(self, holder: str) -> None:
        """A replica stopping cleanly: what it leaves is taken over at once."""
        async with self._writer.begin() as conn:
            await conn.execute(delete(replicas).where(replicas.c.holder == holder))

    async def replica_heartbeats(self) -> dict[str, datetime]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(replicas.c.holder, replicas.c.heartbeat_at))).all()
        return {row.holder: row.heartbeat_at for row in rows}

    async def purge_replicas(self, before: datetime) -> int:
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(replicas).where(replicas.c.heartbeat_at < before))
        return result.rowcount

    # -- undelivered alerts ---------------------------------------------------------------

    async def hold_undelivered(self, record: UndeliveredAlert) -> None:
        """Keep (or update) an alert Slack refused, to be retried."""
        values = record.model_dump()
        ins = self._insert(undelivered_alerts).values(**values)
        stmt = ins.on_conflict_do_update(
            index_elements=[undelivered_alerts.c.key],
            set_={name: ins.excluded[name] for name in ("reason", "tries", "next_try_at")},
        )
        async with self._writer.begin() as conn:
            await conn.execute(stmt)

    async def due_undelivered(self, now: datetime, limit: int = 20) -> list[UndeliveredAlert]:
        query = (
            select(undelivered_alerts)
            .where(undelivered_alerts.c.next_try_at <= now)
            .order_by(undelivered_alerts.c.next_try_at)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [UndeliveredAlert.model_validate(dict(row._mapping)) for row in rows]

    async def drop_undelivered(self, key: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(delete(undelivered_alerts).where(undelivered_alerts.c.key == key))

    async def undelivered_by_channel(self) -> dict[tuple[str, str], int]:
        """(channel, reason) -> how many alerts wait for it."""
        query = select(
            undelivered_alerts.c.channel_id, undelivered_alerts.c.reason, func.count()
        ).group_by(undelivered_alerts.c.channel_id, undelivered_alerts.c.reason)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    # -- cursors --------------------------------------------------------------------------

    async def get_cursor(self, name: str) -> str | None:
        async with self._engine.connect() as conn:
            value = (await conn.execute(select(cursors.c.value).where(cursors.c.name == name))).scalar()
        return None if value is None else str(value)

    async def set_cursor(self, name: str, value: str) -> None:
        ins = self._insert(cursors).values(name=name, value=value, updated_at=self.now())
        stmt = ins.on_conflict_do_update(
            index_elements=[cursors.c.name],
            set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
        )
        async with self._writer.begin() as conn:
            await conn.execute(stmt)
