"""In-memory Code Stream, its executions: the clock they progress by, and the actions on them.

An execution created without a status is RUNNING until its deadline (``execution_duration``
seconds on), and the next read after that moves it to its final status; pause, resume and cancel
act on it as vRA does. ``cs_state.SimState`` adds the events that trigger executions, and makes
an execution's event follow its status.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from bot.simulator.cs_events import now_micros
from bot.simulator.cs_executions import Execution, render_execution

# Execution actions (``POST /executions/{id}?action=``): where each may start, the status the
# answer shows, and the status the next read shows (vRA passes through PAUSING and CANCELING).
EXECUTION_ACTIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "pause": (frozenset({"RUNNING", "WAITING", "QUEUED", "STARTED", "NOT_STARTED"}), "PAUSING", "PAUSED"),
    "resume": (frozenset({"PAUSED"}), "RUNNING", "RUNNING"),
    "cancel": (
        frozenset({"RUNNING", "WAITING", "QUEUED", "STARTED", "NOT_STARTED", "PAUSED"}),
        "CANCELING",
        "CANCELED",
    ),
}


class InvalidExecutionAction(ValueError):
    """The action is unknown, or the execution's status does not allow it (vRA answers 400)."""


class ExecutionState:
    """The executions' side of the simulator's data (``SimState`` adds the events)."""

    def __init__(self, *, execution_duration: float = 2.0, final_status: str = "COMPLETED") -> None:
        self.execution_duration = execution_duration
        self.final_status = final_status
        self._executions: dict[str, Execution] = {}
        self._pending: dict[str, Execution] = {}
        self._last_index: dict[str, int] = {}
        self._last_us = 0
        self._rng = random.Random(20191017)
        self._settling = False  # an execution is PAUSING or CANCELING: the next read settles it

    # -- clock -------------------------------------------------------------------------
    def _tick(self) -> int:
        """Strictly increasing wall-clock microseconds, so 'updatedAt desc' is a total order."""
        self._last_us = max(now_micros(), self._last_us + 1)
        return self._last_us

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- executions --------------------------------------------------------------------
    def _new_execution(
        self,
        pipeline: str,
        project: str,
        index: int | None,
        *,
        status: str | None,
        event: tuple[str, str] | None = None,
        executed_by: str = "codestream",
        final_status: str | None = None,
        created_us: int | None = None,
        execution_id: str | None = None,
    ) -> Execution:
        """status None = RUNNING now, reaching final_status (or the default) later."""
        if index is None:
            index = self._last_index.get(pipeline, 0) + 1
        self._last_index[pipeline] = max(self._last_index.get(pipeline, 0), index)
        created = created_us if created_us is not None else self._tick()
        ex = Execution(
            id=execution_id or self._new_id(),
            pipeline=pipeline,
            project=project,
            index=index,
            status=status or "RUNNING",
            created_us=created,
            updated_us=created,
            executed_by=executed_by,
            event=event,
        )
        if status is None:
            ex.final_status = final_status or self.final_status
            ex.finish_at = time.monotonic() + self.execution_duration
            self._pending[ex.id] = ex
        self._executions[ex.id] = ex
        return ex

    def add_execution(self, **fields: Any) -> dict[str, Any]:
        """Store an execution. Modelled keys: id, pipeline (not a JSON field: gives name and
        _pipelineLink), project, index, status (omit it to get a RUNNING execution that
        progresses), statusMessage, input, _executedBy, _createTimeInMicros, _updateTimeInMicros
        (a terminal execution's duration is their difference), failure (stage, task, error: what
        its stages show when it fails; default cs_executions.DEFAULT_FAILURE). Any other key is
        a JSON field overlaid on the rendered document."""
        if fields.get("id") in self._executions:
            raise ValueError(f"execution {fields['id']} already exists")
        created = fields.pop("_createTimeInMicros", None)
        ex = self._new_execution(
            str(fields.pop("pipeline", "demo-pipeline")),
            str(fields.pop("project", "Default Project")),
            fields.pop("index", None),
            status=fields.pop("status", None),
            executed_by=str(fields.pop("_executedBy", "codestream")),
            created_us=created if isinstance(created, int) else None,
            execution_id=fields.pop("id", None),
        )
        updated = fields.pop("_updateTimeInMicros", None)
        if isinstance(updated, int):
            ex.updated_us = max(updated, ex.created_us)
        ex.status_message = fields.pop("statusMessage", None)
        ex.input = fields.pop("input", None)
        failure = fields.pop("failure", None)
        ex.failure = (str(failure[0]), str(failure[1]), str(failure[2])) if failure else None
        ex.extra = fields or None
        return self._render(ex)

    def set_failure(self, execution_id: str, stage: str, task: str, error: str) -> None:
        """What the execution's stages show when it fails (now, or when its progression ends)."""
        self._executions[execution_id].failure = (stage, task, error)

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        """The execution as the API would return it; KeyError if unknown."""
        self._advance()
        return self._render(self._executions[execution_id])

    def act_on_execution(self, execution_id: str, action: str, reason: str | None) -> dict[str, Any]:
        """Pause, resume or cancel, as vRA does: KeyError for an unknown execution,
        InvalidExecutionAction for an action its status does not allow. A paused execution's
        progression stops and picks up where it was on resume."""
        self._advance()
        ex = self._executions[execution_id]
        rule = EXECUTION_ACTIONS.get(action)
        if rule is None:
            raise InvalidExecutionAction(f"Invalid action {action!r}")
        allowed_from, answered, settled = rule
        if ex.status not in allowed_from:
            raise InvalidExecutionAction(f"Execution is {ex.status}; it cannot be {action}d.")
        ex.reason = reason
        if action == "resume":
            ex.finish_at = time.monotonic() + (ex.remaining if ex.remaining is not None else self.execution_duration)
            ex.remaining = None
            self._pending[ex.id] = ex
        else:
            if ex.id in self._pending and ex.finish_at is not None:
                ex.remaining = max(0.0, ex.finish_at - time.monotonic())
            self._pending.pop(ex.id, None)
            ex.settling = settled
            self._settling = True
        self._set_status(ex, answered)
        return self._render(ex)

    def set_execution_status(self, execution_id: str, status: str) -> None:
        """Force a status now (stops any progression); the owning event follows."""
        ex = self._executions[execution_id]
        self._pending.pop(execution_id, None)
        ex.final_status = ex.finish_at = None
        ex.settling = None
        self._set_status(ex, status)

    def _set_status(self, ex: Execution, status: str) -> None:
        ex.status = status
        ex.status_message = None
        ex.updated_us = self._tick()
        self._event_follows(ex)

    def _advance(self) -> None:
        """Move every execution whose deadline has passed to its final status, and a pausing
        or canceling one to paused or canceled."""
        settling = [ex for ex in self._executions.values() if ex.settling is not None] if self._settling else []
        for ex in settling:
            status, ex.settling = ex.settling, None
            assert status is not None
            self._set_status(ex, status)
        self._settling = False
        if not self._pending:
            return
        now = time.monotonic()
        due = sorted(
            (ex for ex in self._pending.values() if ex.finish_at is not None and ex.finish_at <= now),
            key=lambda ex: ex.finish_at or 0.0,
        )
        for ex in due:
            del self._pending[ex.id]
            final = ex.final_status or self.final_status
            ex.final_status = ex.finish_at = None
            self._set_status(ex, final)

    def _render(self, ex: Execution) -> dict[str, Any]:
        return render_execution(ex, self._event_of(ex), max(self._last_us, now_micros()))

    # -- what the events side (SimState) adds ---------------------------------------------
    def _event_follows(self, ex: Execution) -> None:
        """The event that triggered ``ex`` shows its new status (none here)."""

    def _event_of(self, ex: Execution) -> dict[str, Any] | None:
        """The document of the event that triggered ``ex`` (none here)."""
        return None
