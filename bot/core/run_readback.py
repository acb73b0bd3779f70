"""Settling a pipeline run whose answer was ambiguous: the reconciler (``bot.core.reconcile``)
hands rows of kind ``pipeline`` here. The run carries its key as a tag, so listing the
pipeline's recent executions says whether it started; none by the row's deadline, and it did
not. Never a second POST. The port ``RunNotifier`` shows the late outcome (in place), and a
started run is followed to its end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.executions import Execution
from bot.codestream.pipelines import Pipeline, since_micros
from bot.core.errors import OutcomeUnconfirmed
from bot.core.followup import FollowupTracker
from bot.core.intents import stored_surface
from bot.core.lifecycle import Lifecycle
from bot.core.metrics import record_outcome
from bot.core.readback import Verdict, summary_of
from bot.core.requests import Actor, MessageRef, new_request_id
from bot.core.runs import RUN_DEDUPE_SECONDS, RUN_KIND, RunOutcome, RunRequest, RunStatus, detail_of, run_tag
from bot.core.verbs import RUN
from bot.store import ActionRecord

log = logging.getLogger("bot.core.runs")


class RunNotifier(Protocol):
    async def run_settled(self, outcome: RunOutcome, summary: MessageRef | None) -> MessageRef | None:
        """Show a run's late outcome: update ``summary`` in place (or post one where it was
        asked). Returns where the summary now is (to follow the run), None if nowhere."""
        ...


class LoggedRuns:
    """Without Slack: the outcome is in the audit trail and the log only."""

    async def run_settled(self, outcome: RunOutcome, summary: MessageRef | None) -> MessageRef | None:
        return None


class RunReadBack:
    def __init__(
        self,
        lifecycle: Lifecycle,
        client: CodeStreamClient,
        notifier: RunNotifier,
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
        pipeline_id = detail_of(row).get("pipeline_id")
        if not isinstance(pipeline_id, str) or row.settle_by is None:
            return "gone", None
        try:
            since = since_micros(row.created_at.timestamp())
            execution = await self.client.find_run(pipeline_id, run_tag(row.event_id), since_micros=since)
        except (NotFound, InvalidId):
            return "gone", None
        except CodeStreamError as exc:
            # "Did not start" needs a successful read: a queued POST may still run.
            log.info("read-back failed", extra={"action_id": row.id, "error_class": type(exc).__name__})
            return "unreadable", None
        if execution is not None:
            return "done", execution
        if now >= row.settle_by:
            return "not_started", None
        return "later", None

    async def settle(
        self, row: ActionRecord, status: str, execution: Execution | None, now: datetime, why: Verdict
    ) -> bool:
        started = status == "done" and execution is not None and execution.id is not None
        state: RunStatus = "started" if started else "not_started" if status == "not_started" else "unknown"
        error = OutcomeUnconfirmed() if state == "unknown" else None
        changes = {
            "status": state,
            "finished_at": now,
            "next_check_at": None,
            "execution_id": execution.id if started and execution is not None else None,
            "error": error.user_message if error is not None else None,
            "error_class": type(error).__name__ if error is not None else None,
        }
        settle_for = None if state == "not_started" else RUN_DEDUPE_SECONDS
        if not await self.lifecycle.settle(row, changes, settle_for=settle_for):
            return False
        outcome = self._outcome(row, state, execution if started else None, error)
        record_outcome(RUN.name, outcome.request.surface, f"{state}_late")
        log.info("pipeline run settled %s after reading it back", state, extra={"action_id": row.id, "result": state})
        try:
            where = await self.notifier.run_settled(outcome, summary_of(row))
        except Exception:
            log.exception("could not show a late outcome", extra={"action_id": row.id})
            return True
        if started and where is not None and self.tracker is not None and execution is not None:
            try:
                await self.tracker.track_execution(
                    execution.id or "",
                    kind=RUN_KIND,
                    target_id=row.event_id,
                    action_id=row.id,
                    summary=where,
                    actor_id=row.actor_id,
                    status=execution.status,
                )
            except Exception:
                log.exception("could not start following the run", extra={"action_id": row.id})
        return True

    def _outcome(
        self, row: ActionRecord, status: RunStatus, execution: Execution | None, error: OutcomeUnconfirmed | None
    ) -> RunOutcome:
        detail = detail_of(row)
        inputs = detail.get("inputs")
        request = RunRequest(
            pipeline_id=str(detail.get("pipeline_id") or ""),
            inputs={str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {},
            key=row.event_id,
            actor=Actor(row.actor_id, row.actor_name),
            surface=stored_surface(row.surface),
            channel_id=row.channel_id,
            request_id=row.request_id or new_request_id(),
        )
        pipeline = Pipeline.model_validate({"id": request.pipeline_id, "name": row.pipeline, "project": row.project})
        outcome = RunOutcome(
            request,
            status,
            pipeline,
            error=error,
            action_id=row.id,
            at=row.created_at,
            settle_by=row.settle_by,
            settled_late=True,
        )
        if execution is not None and execution.id:
            return replace(
                outcome,
                execution_id=execution.id,
                execution_index=execution.index,
                execution_url=self.execution_url(execution.id),
            )
        return outcome
