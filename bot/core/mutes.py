"""Mutes: someone allowed to (access action ``mute``) silences a pipeline — or a repository's
branch — for an hour, a day, or until a run of it passes again. Muted failures are counted
(metric and store) and shown by ``/codestream list``, not posted. Every mute and unmute is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from bot.codestream.models import Event, EventKind, as_kind
from bot.core import metrics
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.errors import AccessDenied, UsageError
from bot.core.requests import Actor, Surface, new_request_id
from bot.store import ActionRecord, MuteRecord, Store

log = logging.getLogger(__name__)

MuteScope = Literal["pipeline", "branch"]
#: How long, by the option's key; None: until a run of it passes again (at most MAX_PASS_WAIT).
DURATIONS: Final[dict[str, float | None]] = {"1h": 3600.0, "1d": 86_400.0, "pass": None}
MAX_PASS_WAIT: Final = 7 * 86_400.0  # "until it passes" for a pipeline that never passes: a week
SCOPES: Final[tuple[MuteScope, ...]] = ("pipeline", "branch")


def target(event: Event, scope: MuteScope) -> str | None:
    """What a mute of this scope would silence, in words; None when the event lacks it."""
    if scope == "pipeline":
        if not (event.pipeline or "").strip():
            return None
        return f"{event.pipeline} ({event.project})" if event.project else event.pipeline
    if (event.repository or "").strip() and (event.branch or "").strip():
        return f"{event.repository} on {event.branch}"
    return None


def access_scope(kind: EventKind, scope: str, project: str | None, pipeline: str | None) -> Scope:
    """What access is checked against. A branch mute silences every project's and pipeline's
    failures on that branch, so only a rule covering any project and pipeline allows it."""
    return Scope(kind, project, pipeline) if scope == "pipeline" else Scope(kind)


def describe(mute: MuteRecord) -> str:
    if mute.scope == "pipeline":
        return f"{mute.pipeline} ({mute.project})" if mute.project else str(mute.pipeline)
    return f"{mute.repo} on {mute.branch}"


def matches(mute: MuteRecord, event: Event) -> bool:
    if mute.kind != event.kind:
        return False
    if mute.scope == "pipeline":
        return mute.pipeline == event.pipeline and (mute.project or "") == (event.project or "")
    return mute.repo is not None and mute.repo == event.repository and mute.branch == event.branch


def ends_on_pass(mute: MuteRecord, event: Event) -> bool:
    """A passing run ends an until-it-passes mute only where the muted failure was: the same
    pipeline on the same branch (a pass on a feature branch says nothing about main)."""
    return (
        mute.until_pass
        and matches(mute, event)
        and mute.pipeline == event.pipeline
        and mute.branch == event.branch
        and event.passed
    )


def mute_key(record: MuteRecord) -> str:
    parts = (
        (record.scope, record.kind, record.project, record.pipeline)
        if record.scope == "pipeline"
        else (record.scope, record.kind, record.repo, record.branch)
    )
    return "mute:" + ":".join(p or "" for p in parts)


@dataclass(frozen=True)
class MuteAsked:
    event: Event
    scope: MuteScope
    duration: str  # a DURATIONS key
    actor: Actor
    surface: Surface
    channel_id: str | None
    team_id: str | None = None


async def mute(store: Store, access: AccessPolicy, asked: MuteAsked) -> MuteRecord:
    """Mute what ``asked`` names; AccessDenied or UsageError (audited) when it cannot be."""
    event, actor = asked.event, asked.actor
    viewer = Viewer(actor.user_id, asked.channel_id, asked.team_id)
    audit = ActionRecord(
        kind=event.kind,
        event_id=event.id or "",
        action="mute",
        actor_id=actor.user_id,
        actor_name=actor.name,
        surface=asked.surface,
        channel_id=asked.channel_id,
        project=event.project,
        pipeline=event.pipeline,
    )
    if asked.duration not in DURATIONS or asked.scope not in SCOPES or target(event, asked.scope) is None:
        raise UsageError("That mute cannot be made for this event (it names no pipeline or branch).")
    try:
        await access.check_action("mute", viewer, access_scope(event.kind, asked.scope, event.project, event.pipeline))
    except AccessDenied as denied:
        await store.actions.record(audit.model_copy(update={"status": "denied", "error": denied.user_message}))
        raise
    now = store.now()
    seconds = DURATIONS[asked.duration]
    record = MuteRecord(
        scope=asked.scope,
        kind=event.kind,
        # Kept for every scope: the muted failure's place, for access and for "until it passes".
        project=event.project,
        pipeline=event.pipeline,
        repo=event.repository if asked.scope == "branch" else None,
        branch=event.branch,
        until=now + timedelta(seconds=seconds if seconds is not None else MAX_PASS_WAIT),
        until_pass=seconds is None,
        event_id=event.id,
        muted_by=actor.user_id,
        channel_id=asked.channel_id,
        created_at=now,
    )
    # A double click (two requests, not a replay) must not make two mutes: one at a time per key,
    # and an open mute of the same key is the answer.
    key, holder = mute_key(record), new_request_id()
    if not (await store.claims.claim(key, holder, 30.0)).won:
        raise UsageError("Someone is muting that right now; `/codestream mutes` lists what is muted.")
    try:
        existing = next((m for m in await store.mutes.active(now) if mute_key(m) == key), None)
        if existing is not None:
            return existing
        mute_id = await store.mutes.add(record)
    finally:
        await store.claims.release(key, holder)
    await store.actions.record(audit.model_copy(update={"status": "started", "finished_at": now}))
    log.info("muted", extra={"mute_id": mute_id, "scope": asked.scope, "actor_id": actor.user_id})
    return record.model_copy(update={"id": mute_id})


async def unmute(
    store: Store, access: AccessPolicy, mute_id: int, actor: Actor, *, channel_id: str | None, team_id: str | None
) -> MuteRecord:
    """End mute ``mute_id``; UsageError when there is no such mute on, AccessDenied (audited)."""
    now = store.now()
    record = await store.mutes.get(mute_id)
    if record is None or record.ended_at is not None or record.until <= now:
        raise UsageError(f"No mute #{mute_id} is on. `/codestream mutes` lists them.")
    kind = as_kind(record.kind) or "git"
    scope = access_scope(kind, record.scope, record.project, record.pipeline)
    audit = ActionRecord(
        kind=record.kind,
        event_id=record.event_id or "",
        action="unmute",
        actor_id=actor.user_id,
        actor_name=actor.name,
        surface="slash",
        channel_id=channel_id,
        project=record.project,
        pipeline=record.pipeline,
    )
    try:
        await access.check_action("mute", Viewer(actor.user_id, channel_id, team_id), scope)
    except AccessDenied as denied:
        await store.actions.record(audit.model_copy(update={"status": "denied", "error": denied.user_message}))
        raise
    if not await store.mutes.end(mute_id, by=actor.user_id, at=now):
        raise UsageError(f"No mute #{mute_id} is on. `/codestream mutes` lists them.")
    await store.actions.record(audit.model_copy(update={"status": "started", "finished_at": now}))
    return record.model_copy(update={"ended_at": now, "ended_by": actor.user_id})


class ActiveMutes:
    """The watcher's view of the mutes, read once per cycle."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._active: list[MuteRecord] = []

    async def load(self) -> None:
        """What is muted now. A store that cannot say means nothing is muted: alerts go out."""
        try:
            self._active = await self.store.mutes.active(self.store.now())
        except Exception as exc:  # noqa: BLE001 - logged; muting fails open so nothing is silenced by accident
            log.warning("watcher: mutes unreadable; alerting everything", extra={"error_class": type(exc).__name__})
            self._active = []

    def matching(self, event: Event) -> MuteRecord | None:
        return next((m for m in self._active if matches(m, event)), None)

    async def suppressed(self, mute_record: MuteRecord, event: Event) -> None:
        assert mute_record.id is not None
        metrics.ALERTS_MUTED.labels(event.kind).inc()
        await self.store.mutes.count_suppressed(mute_record.id)
        log.info("watcher: failure not alerted: muted", extra={"mute_id": mute_record.id, "event_id": event.id})

    async def passed(self, event: Event, at: datetime) -> None:
        """A run passed: the until-it-passes mutes matching it end."""
        ids = [m.id for m in self._active if m.id is not None and ends_on_pass(m, event)]
        if ids and await self.store.mutes.end_until_pass(ids, at):
            self._active = [m for m in self._active if m.id not in ids]
