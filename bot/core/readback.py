"""The reconciler's side of the lifecycle: reading an open action's target back, and the events'
read-back (``EventReadBack``). Each adapter has one: ``read`` says what the target shows now,
``settle`` records the outcome, ends the claim and tells the people waiting (through its port).
Never a second POST."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Protocol, TypeAlias

from bot.codestream.client import CodeStreamClient, execution_changed
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.models import Event, as_kind
from bot.core.errors import OutcomeUnconfirmed
from bot.core.followup import FollowupTracker
from bot.core.intents import request_from_row, without_execution
from bot.core.lifecycle import Lifecycle
from bot.core.metrics import record_outcome
from bot.core.ports import OutcomeNotifier
from bot.core.requests import MessageRef, Outcome, OutcomeStatus
from bot.store import ActionRecord

log = logging.getLogger("bot.core.reconcile")

#: What one read-back says: settle it now (done, not started, gone: unknown), look again later,
#: or Code Stream could not be read (``unconfirmed``: read too long past the deadline).
Verdict: TypeAlias = Literal["done", "not_started", "gone", "later", "unreadable", "unconfirmed"]

_EVENT_STATUS: dict[str, OutcomeStatus] = {"done": "started", "not_started": "not_started"}
LEGACY_NOTE = "Left open by an earlier release of the bot; its outcome was not recorded."


class ReadBack(Protocol):
    async def read(self, row: ActionRecord, now: datetime) -> tuple[Verdict, Any]: ...

    async def settle(self, row: ActionRecord, status: str, thing: Any, now: datetime, why: Verdict) -> bool:
        """``status``: done, not_started or unknown. False when settled elsewhere meanwhile."""


def summary_of(row: ActionRecord) -> MessageRef | None:
    """Where the unknown outcome was shown, to update in place."""
    if row.summary_channel and row.summary_ts:
        return MessageRef(row.summary_channel, row.summary_ts, row.summary_ts)
    return None


class EventReadBack:
    """A rerun or resume: a new execution means it ran (``started``); none by the row's
    ``settle_by`` deadline means it did not (``not_started``, and only now is the intent
    released)."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        client: CodeStreamClient,
        notifier: OutcomeNotifier,
        *,
        execution_url: Callable[[str], str],
        dedupe_seconds: float,
        tracker: FollowupTracker | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.client = client
        self.notifier = notifier
        self.execution_url = execution_url
        self.dedupe_seconds = dedupe_seconds
        self.tracker = tracker  # follows what a late outcome started

    async def read(self, row: ActionRecord, now: datetime) -> tuple[Verdict, Event | None]:
        kind = as_kind(row.kind)
        if kind is None or row.settle_by is None:
            return "gone", None  # left open by an older release, which kept no "before"
        try:
            event = await self.client.get_event(kind, row.event_id)
        except (NotFound, InvalidId):
            return "gone", None
        except CodeStreamError as exc:
            # "Did not start" needs a successful read: while Code Stream cannot be read, a
            # queued POST may still run, so the intent stays claimed.
            log.info("read-back failed", extra={"action_id": row.id, "error_class": type(exc).__name__})
            return "unreadable", None
        if execution_changed(row.before_execution_index, row.before_execution_link, event):
            return "done", event
        if now >= row.settle_by:
            return "not_started", event
        return "later", event

    async def settle(self, row: ActionRecord, status: str, event: Event | None, now: datetime, why: Verdict) -> bool:
        legacy = as_kind(row.kind) is None or row.settle_by is None
        error = _unconfirmed(why, legacy) if status == "unknown" else None
        state = _EVENT_STATUS.get(status, "unknown")
        started = state == "started" and event is not None
        changes = {
            "status": state,
            "finished_at": now,
            "next_check_at": None,
            "execution_link": event.execution_link if started and event is not None else None,
            "execution_id": event.execution_id if started and event is not None else None,
            "error": error.user_message if error is not None else None,
            "error_class": type(error).__name__ if error is not None else None,
        }
        # Nothing ran: free at once. Started, or not confirmed: repeats within the dedupe window
        # are told who acted.
        settle_for = None if state == "not_started" else self.dedupe_seconds
        if not await self.lifecycle.settle(row, changes, settle_for=settle_for):
            return False
        outcome = self._outcome(row, state, event, error)
        record_outcome(outcome.request.verb, outcome.request.surface, f"{state}_late")
        log.info(
            "action %s settled %s after reading the event back",
            outcome.request.verb,
            state,
            extra={"action_id": row.id, "event_id": row.event_id, "result": state},
        )
        if not legacy:  # nobody is waiting for a request an older release left open
            await self._tell(row, outcome)
        return True

    async def _tell(self, row: ActionRecord, outcome: Outcome) -> None:
        try:
            where = await self.notifier.settled(outcome, summary_of(row))
        except Exception:
            log.exception("could not show a late outcome", extra={"action_id": row.id})
            return
        if outcome.status == "started" and self.tracker is not None and where is not None:
            try:
                alert = outcome.request.alert
                await self.tracker.track(outcome, channel=where.channel, summary_ts=where.ts, alert=alert)
            except Exception:
                log.exception("could not start following the execution", extra={"action_id": row.id})

    def _outcome(
        self, row: ActionRecord, status: OutcomeStatus, event: Event | None, error: OutcomeUnconfirmed | None
    ) -> Outcome:
        alert = (
            MessageRef(row.alert_channel, row.alert_ts, row.alert_thread_ts or row.alert_ts)
            if row.alert_channel and row.alert_ts
            else None
        )
        request = request_from_row(row, as_kind(row.kind) or "git", alert=alert)
        url = self.execution_url(event.execution_id) if status == "started" and event and event.execution_id else None
        # Not started: the event's execution is the old one, which must not pass for a new one.
        shown = event if status == "started" or event is None else without_execution(event)
        return Outcome(
            request,
            status,
            event=shown,
            execution_url=url,
            error=error,
            action_id=row.id,
            at=row.created_at,
            settle_by=row.settle_by,
            settled_late=True,
        )


def _unconfirmed(why: Verdict, legacy: bool) -> OutcomeUnconfirmed:
    if legacy:
        return OutcomeUnconfirmed(LEGACY_NOTE)
    if why == "gone":
        return OutcomeUnconfirmed("Code Stream no longer has this event.")
    return OutcomeUnconfirmed()
