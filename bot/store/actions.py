"""Actions: the audit trail of every resume/rerun, and the open ones a replica must finish."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Update, and_, delete, select, update

from bot.store.base import StoreBase, validated_changes
from bot.store.models import OPEN_STATUSES, ActionRecord
from bot.store.tables import actions

# An action whose outcome nobody knows yet: pending or unknown, and not finished (an "unknown"
# that could not be confirmed by its deadline is finished, and stays "unknown").
_OPEN = and_(actions.c.status.in_(OPEN_STATUSES), actions.c.finished_at.is_(None))


def update_open_stmt(action_id: int, owner: str, changes: dict[str, Any]) -> Update:
    """Change an open action ``owner`` finishes (see ``update_open_action``); the changes are
    validated as the record's fields (unknown or frozen ones raise TypeError)."""
    values = validated_changes(ActionRecord, changes, {"id", "created_at"})
    return update(actions).where(actions.c.id == action_id, actions.c.owner == owner, _OPEN).values(**values)


def record_values(record: ActionRecord) -> dict[str, Any]:
    """An audit row's columns (its id is the database's)."""
    return record.model_dump(exclude={"id"})


class ActionStore(StoreBase):
    async def record_action(self, record: ActionRecord) -> int:
        return await self._add_row(actions, record_values(record))

    async def update_action(self, action_id: int, **changes: Any) -> bool:
        """Update fields (status, execution_link, execution_id, error, error_class, finished_at,
        duplicate_of, ...). Unknown fields raise TypeError. Returns whether the row exists."""
        values = validated_changes(ActionRecord, changes, {"id", "created_at"})
        if not values:
            return await self.get_action(action_id) is not None
        return await self._update_row(actions, action_id, values)

    async def update_open_action(self, action_id: int, owner: str, **changes: Any) -> bool:
        """Update an action whose outcome is still open (pending / unknown) and that ``owner``
        finishes. False when it was settled or taken over meanwhile: then leave it alone."""
        stmt = update_open_stmt(action_id, owner, changes)
        async with self._write() as conn:
            result = await conn.execute(stmt)
        return result.rowcount > 0

    async def take_over_action(self, action_id: int, owner: str | None, new_owner: str) -> bool:
        """Make ``new_owner`` responsible for an open action its ``owner`` left (it died, or
        stopped). Atomic: of several replicas trying at once, one wins."""
        owned = actions.c.owner.is_(None) if owner is None else actions.c.owner == owner
        stmt = update(actions).where(actions.c.id == action_id, owned, _OPEN).values(owner=new_owner)
        async with self._write() as conn:
            result = await conn.execute(stmt)
        return result.rowcount > 0

    async def actions_by_request(self, request_id: str) -> list[ActionRecord]:
        query = select(actions).where(actions.c.request_id == request_id).limit(20)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]

    async def open_actions(self, limit: int = 500) -> list[ActionRecord]:
        """Actions whose outcome is not known yet (pending / unknown), oldest first."""
        query = select(actions).where(_OPEN).order_by(actions.c.created_at, actions.c.id).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]

    async def purge_actions(self, before: datetime) -> int:
        """Delete finished audit rows created before ``before`` (retention). Open ones stay."""
        stmt = delete(actions).where(actions.c.created_at < before, ~_OPEN)
        async with self._write() as conn:
            result = await conn.execute(stmt)
        return result.rowcount

    async def get_action(self, action_id: int) -> ActionRecord | None:
        async with self._read() as conn:
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
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ActionRecord.model_validate(dict(row._mapping)) for row in rows]
