"""Settling a cancel, pause or resume whose answer was ambiguous: the reconciler
(``bot.core.reconcile``) hands rows of kind ``execution`` here. The execution's status says
whether the action took effect; until the row's deadline nobody says "try again", and the
intent stays claimed. Never a second POST."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.execution_actions import status_of, took_effect
from bot.codestream.executions import Execution
from bot.core.control.perform import DONE
from bot.core.control.ports import ControlNotifier
from bot.core.control.requests import ControlOutcome, ControlRequest, ControlStatus
from bot.core.errors import OutcomeUnconfirmed
from bot.core.followup import FollowupTracker
from bot.core.intents import stored_surface
from bot.core.lifecycle import Lifecycle
from bot.core.metrics import record_outcome
from bot.core.readback import Verdict, summary_of
from bot.core.requests import Actor, new_request_id
from bot.core.verbs import CONTROLS, control_spec
from bot.store import ActionRecord

log = logging.getLogger("bot.core.control")


class ControlReadBack:
    def __init__(
        self,
        lifecycle: Lifecycle,
        client: CodeStreamClient,
        notifier: ControlNotifier,
        *,
        execution_url: Callable[[str], str],
        tracker: FollowupTracker | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.client = client
        self.notifier = notifier
        self.execution_url = execution_url
        self.tracker = tracker

    async def read(self, row: ActionRecord, now: datetime) -> tuple[Verdict, Execution | None]:
        spec = control_spec(row.action) or CONTROLS["cancel"]
        try:
            execution = await self.client.get_execution(row.event_id)
        except (NotFound, InvalidId):
            return "gone", None
        except CodeStreamError as exc:
            log.info("read-back failed", extra={"action_id": row.id, "error_class": type(exc).__name__})
            return "unreadable", None
        if took_effect(spec.action, execution):
            return "done", execution
        if row.settle_by is not None and now >= row.settle_by:
            return "not_started", execution
        return "later", execution

    async def settle(
        self, row: ActionRecord, status: str, execution: Execution | None, now: datetime, why: Verdict
    ) -> bool:
        """Record the outcome, free the execution for the next request, tell the person where
        the answer was shown, and have the followed summary say who acted. Returns False when
        the row was settled or taken over meanwhile."""
        action_id = row.id
        error = None
        if status == "unknown":
            error = OutcomeUnconfirmed(
                "The bot could not confirm whether Code Stream took it; check the execution in Code Stream."
            )
        changes = {
            "status": DONE if status == "done" else status,
            "finished_at": now,
            "next_check_at": None,
            "execution_id": row.event_id,
            "error": error.user_message if error is not None else None,
            "error_class": type(error).__name__ if error is not None else None,
        }
        if not await self.lifecycle.settle(row, changes, settle_for=None):
            return False
        shown: ControlStatus = "done" if status == "done" else "not_started" if status == "not_started" else "unknown"
        outcome = self._outcome(row, shown, execution, error)
        record_outcome(outcome.request.verb, outcome.request.surface, f"{status}_late")
        log.info(
            "execution %s settled %s after reading it back",
            row.action,
            status,
            extra={
                "action_id": action_id,
                "execution_id": row.event_id,
                "result": status,
                "status": status_of(execution),
            },
        )
        try:
            await self.notifier.control_settled(outcome, summary_of(row))
        except Exception:
            log.exception("could not show a late outcome", extra={"action_id": action_id})
        if status == "done" and self.tracker is not None:
            try:
                await self.tracker.acted(row.event_id, verb=row.action, actor_id=row.actor_id, at=row.created_at)
            except Exception:
                log.exception("could not mark the followed summary", extra={"action_id": action_id})
        return True

    def _outcome(
        self, row: ActionRecord, status: ControlStatus, execution: Execution | None, error: OutcomeUnconfirmed | None
    ) -> ControlOutcome:
        spec = control_spec(row.action) or CONTROLS["cancel"]
        request = ControlRequest(
            verb=spec.name,
            execution_id=row.event_id,
            actor=Actor(row.actor_id, row.actor_name),
            surface=stored_surface(row.surface),
            channel_id=row.channel_id,
            request_id=row.request_id or new_request_id(),
        )
        return ControlOutcome(
            request,
            status,
            execution=execution,
            execution_url=self.execution_url(row.event_id),
            error=error,
            action_id=row.id,
            at=row.created_at,
            settle_by=row.settle_by,
            settled_late=True,
        )
