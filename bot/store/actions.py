"""Actions: the audit trail of every resume/rerun, and the open ones a replica must finish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import Field
from sqlalchemy import Column, Index, Integer, Text, and_, bindparam, delete, select, update

from bot.store.base import Bound, Part, validated_changes
from bot.store.schema import BigId, Record, UTCDateTime, UTCDatetime, id_column, table, utcnow

actions = table(
    "actions",
    id_column(),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("actor_name", Text),
    Column("surface", Text, nullable=False),
    Column("channel_id", Text),
    Column("status", Text, nullable=False),
    Column("execution_link", Text),
    Column("execution_id", Text),
    Column("error", Text),
    Column("error_class", Text),
    Column("duplicate_of", BigId),
    Column("request_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # v2, the intent lifecycle: what a reconciler (this replica's, or another's after a crash)
    # needs to finish an action whose outcome is not known yet (status pending / unknown).
    Column("owner", Text),  # the replica finishing it
    Column("before_execution_index", Integer),  # the event as read before the POST
    Column("before_execution_link", Text),
    Column("settle_by", UTCDateTime),  # no new execution by then: it did not run
    Column("next_check_at", UTCDateTime),  # the next read-back
    Column("summary_channel", Text),  # the answer to update in place
    Column("summary_ts", Text),
    Column("alert_channel", Text),  # the alert the action came from
    Column("alert_ts", Text),
    Column("alert_thread_ts", Text),
    Column("project", Text),  # the event's, so that reading the audit trail follows the access policy
    Column("pipeline", Text),
    # v8: what else the action's kind records, as JSON (a pipeline run: the pipeline's id and
    # the inputs given, secrets masked).
    Column("detail", Text),
    Index("ix_actions_created_at", "created_at"),
    Index("ix_actions_event_id", "event_id", "created_at"),
    Index("ix_actions_actor_id", "actor_id", "created_at"),
    Index("ix_actions_alert", "alert_channel", "alert_ts"),  # v3: acted from this alert?
    Index("ix_actions_status", "status"),
)


# Documented values (the columns are plain text so new values need no migration).
ACTION_KINDS: Final = ("git", "gerrit", "docker", "execution", "approval", "pipeline")
# ``actions.action`` holds a mutating verb's name from the verb registry (bot.core.verbs): the
# store sits below the core, so it takes any name and the core reads it back (``stored_verb``).
SURFACES: Final = ("slash", "button", "thread", "mention", "cli", "form", "workflow")
ACTION_STATUSES: Final = (
    "claimed",  # the intent is claimed and checked; nothing has been sent to Code Stream yet
    "pending",  # the one call to Code Stream is being made (or the process died around it)
    "started",
    "failed",
    "unknown",
    "denied",
    "duplicate",
    "not_started",
)
#: An action in one of these has an outcome nobody knows yet: its intent stays claimed.
OPEN_STATUSES: Final = ("claimed", "pending", "unknown")


class ActionRecord(Record):
    """One resume/rerun request: the audit trail and the idempotency record."""

    id: int | None = None
    kind: str
    event_id: str
    action: str
    actor_id: str
    actor_name: str | None = None
    surface: str
    channel_id: str | None = None
    status: str = "pending"
    execution_link: str | None = None
    execution_id: str | None = None
    error: str | None = None
    error_class: str | None = None
    duplicate_of: int | None = None
    request_id: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None
    # The intent lifecycle (see bot.core.reconcile): set while the outcome is pending or unknown.
    owner: str | None = None
    before_execution_index: int | None = None
    before_execution_link: str | None = None
    settle_by: UTCDatetime | None = None
    next_check_at: UTCDatetime | None = None
    summary_channel: str | None = None
    summary_ts: str | None = None
    alert_channel: str | None = None
    alert_ts: str | None = None
    alert_thread_ts: str | None = None
    project: str | None = None  # of the event, when it was read
    pipeline: str | None = None
    detail: str | None = None  # JSON, by kind: a pipeline run's {"pipeline_id", "inputs"}

    @property
    def in_flight(self) -> bool:
        """Nobody knows the outcome yet: the intent stays claimed and a reconciler finishes it."""
        return self.status in OPEN_STATUSES and self.finished_at is None


# An action whose outcome nobody knows yet: pending or unknown, and not finished (an "unknown"
# that could not be confirmed by its deadline is finished, and stays "unknown").
_OPEN = and_(actions.c.status.in_(OPEN_STATUSES), actions.c.finished_at.is_(None))
_UPDATE_OPEN = update(actions).where(actions.c.id == bindparam("w_id"), actions.c.owner == bindparam("w_owner"), _OPEN)


def update_open_stmt(action_id: int, owner: str, changes: dict[str, Any]) -> Bound:
    """Change an open action ``owner`` finishes (see ``Actions.update_open``); the changes are
    validated as the record's fields (unknown or frozen ones raise TypeError)."""
    values = validated_changes(ActionRecord, changes, {"id", "created_at"})
    if not values:
        raise TypeError("nothing to change in the action")
    return _UPDATE_OPEN, {**values, "w_id": action_id, "w_owner": owner}


def record_values(record: ActionRecord) -> dict[str, Any]:
    """An audit row's columns (its id is the database's)."""
    return record.model_dump(exclude={"id"})


class Actions(Part):
    """``store.actions``: the audit rows, read and changed one at a time."""

    async def record(self, record: ActionRecord) -> int:
        return await self._add_row(actions, record_values(record))

    async def update(self, action_id: int, **changes: Any) -> bool:
        """Update fields (status, execution_link, execution_id, error, error_class, finished_at,
        duplicate_of, ...). Unknown fields raise TypeError. Returns whether the row exists."""
        values = validated_changes(ActionRecord, changes, {"id", "created_at"})
        if not values:
            return await self.get(action_id) is not None
        return await self._update_row(actions, action_id, values)

    async def update_open(self, action_id: int, owner: str, **changes: Any) -> bool:
        """Update an action whose outcome is still open (pending / unknown) and that ``owner``
        finishes. False when it was settled or taken over meanwhile: then leave it alone."""
        return await self._changed(update_open_stmt(action_id, owner, changes)) > 0

    async def take_over(self, action_id: int, owner: str | None, new_owner: str) -> bool:
        """Make ``new_owner`` responsible for an open action its ``owner`` left (it died, or
        stopped). Atomic: of several replicas trying at once, one wins."""
        owned = actions.c.owner.is_(None) if owner is None else actions.c.owner == owner
        return (
            await self._changed(update(actions).where(actions.c.id == action_id, owned, _OPEN).values(owner=new_owner))
            > 0
        )

    async def by_request(self, request_id: str) -> list[ActionRecord]:
        query = select(actions).where(actions.c.request_id == request_id).limit(20)
        return await self._all(query, ActionRecord.model_validate)

    async def may_have_run(self, kind: str, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` an action was sent (or is being sent) for: started, unknown,
        pending or claimed — a rerun of them now could be a second run."""
        if not event_ids:
            return set()
        query = select(actions.c.event_id).where(
            actions.c.kind == kind,
            actions.c.event_id.in_(list(event_ids)),
            actions.c.status.in_(("started", "unknown", "pending", "claimed")),
        )
        async with self._read() as conn:
            return {str(row[0]) for row in await conn.execute(query)}

    async def open(self, limit: int = 500) -> list[ActionRecord]:
        """Actions whose outcome is not known yet (pending / unknown), oldest first."""
        query = select(actions).where(_OPEN).order_by(actions.c.created_at, actions.c.id).limit(limit)
        return await self._all(query, ActionRecord.model_validate)

    async def purge(self, before: datetime) -> int:
        """Delete finished audit rows created before ``before`` (retention). Open ones stay."""
        return await self._changed(delete(actions).where(actions.c.created_at < before, ~_OPEN))

    async def get(self, action_id: int) -> ActionRecord | None:
        return await self._first(select(actions).where(actions.c.id == action_id), ActionRecord.model_validate)

    # Last in the class: a method named ``list`` hides the builtin from the annotations of the
    # methods after it (mypy: 'Function "list" is not valid as a type').
    async def list(
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
        return await self._all(query, ActionRecord.model_validate)
