"""``ExecutionControl.perform(request) -> ControlOutcome``: cancel, pause or resume an execution
— the adapter of executions to the one intent lifecycle (``bot.core.lifecycle``). No Slack.

1. read the execution (an unknown id fails here, before anything is claimed)
2. access: the verb's access action (``cancel`` or ``pause``) on the execution's project and
   pipeline; refused requests are audited
3. the runner claims ``intent:execution:<id>`` with a ``claimed`` row, reads the execution again
   *under the claim* and checks its status allows the action (a second click that lost the race
   sees "already PAUSED" instead of sending a second POST), then ONE
   ``POST …/executions/{id}?action=``; an ambiguous answer is read back by the reconciler
   (``readback.py``: the execution's status says whether it took effect)
4. a known outcome releases the claim: from then on the execution's status is the guard
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.execution_actions import can_start, is_over, status_of, took_effect
from bot.codestream.executions import Execution
from bot.core.access import AccessPolicy, AllowEveryone, Scope, Viewer
from bot.core.control.requests import (
    EXECUTION_KIND,
    ControlOutcome,
    ControlRequest,
    ControlStatus,
    NotActionable,
    PriorControl,
    pipeline_of,
)
from bot.core.errors import AccessDenied, BotError
from bot.core.intents import INTENT_PREFIX
from bot.core.lifecycle import Closing, Intent, Lifecycle, Run, Sent
from bot.core.logs import request_id as request_id_var
from bot.core.metrics import record_outcome
from bot.core.requests import Actor, MessageRef
from bot.core.verbs import control_spec, reason_for
from bot.store import ActionRecord

log = logging.getLogger("bot.core.control")

#: The audit row's status for an action Code Stream took (``started`` is for new executions).
DONE: Final = "done"


def execution_intent_key(execution_id: str) -> str:
    """One request on an execution at a time, whatever the verb: a cancel and a pause of the
    same execution must not both be in flight."""
    return f"{INTENT_PREFIX}{EXECUTION_KIND}:{execution_id}"


def not_actionable(request: ControlRequest, execution: Execution) -> NotActionable:
    spec = request.spec
    status = status_of(execution) or "in an unknown status"
    what = f"{pipeline_of(execution) or 'The execution'} #{execution.index}" if execution.index else "The execution"
    if is_over(execution):
        return NotActionable(f"{what} has already ended ({status}): there is nothing to {spec.label.lower()}.")
    if spec.action == "resume":
        return NotActionable(f"{what} is {status}, not paused: there is nothing to resume.")
    return NotActionable(f"{what} is already {status}: it cannot be {spec.past} now.")


@dataclass
class ExecutionTarget:
    """The adapter: what is specific to acting on an execution."""

    client: CodeStreamClient
    lifecycle: Lifecycle

    reread = True  # a request that finished a moment ago has changed the status

    def intent(self, request: ControlRequest) -> Intent:
        data = {"actor_id": request.actor.user_id, "actor_name": request.actor.name, "verb": request.verb}
        return Intent(execution_intent_key(request.execution_id), request.request_id, data)

    def row(
        self, request: ControlRequest, status: str, target: Execution | None, error: Exception | None
    ) -> ActionRecord:
        """The audit row: kind ``execution``, the execution id in ``event_id``."""
        return self.lifecycle.row(
            request,
            status,
            error,
            kind=EXECUTION_KIND,
            target_id=request.execution_id,
            action=request.verb,
            project=target.project if target is not None else None,
            pipeline=pipeline_of(target),
            before_execution_index=target.index if target is not None else None,
        )

    async def read(self, request: ControlRequest) -> Execution:
        return await self.client.get_execution(request.execution_id)

    def stale(self, request: ControlRequest, target: Execution) -> Closing | None:
        if can_start(request.spec.action, target):
            return None
        return Closing("failed", not_actionable(request, target))

    async def send(self, request: ControlRequest, target: Execution) -> Sent[Execution]:
        reason = reason_for(request.spec, request.actor.name, request.actor.user_id)
        result = await self.client.act_on_execution(
            request.execution_id, request.spec.action, reason=reason, before=target
        )
        return Sent(result.state, result.before, result.execution, result.error)

    async def refused(self, request: ControlRequest, error: CodeStreamError) -> tuple[Execution, Closing] | None:
        """A 4xx because the action was already taken (our read lagged behind Code Stream): say
        that, as a fresh read shows."""
        try:
            execution = await self.client.get_execution(request.execution_id)
        except CodeStreamError:
            return None
        if not took_effect(request.spec.action, execution):
            return None
        return execution, Closing("failed", not_actionable(request, execution))

    def closing(self, request: ControlRequest, sent: Sent[Execution]) -> Closing:
        if sent.state == "succeeded":
            return Closing(DONE, execution_id=request.execution_id)
        return Closing("not_started", sent.error, execution_id=request.execution_id)


@dataclass
class ExecutionControl:
    """Cancel, pause and resume executions: the read, access, and the runner."""

    target: ExecutionTarget
    execution_url: Callable[[str], str]  # execution id -> the human UI link
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default

    @property
    def lifecycle(self) -> Lifecycle:
        return self.target.lifecycle

    async def perform(self, request: ControlRequest) -> ControlOutcome:
        token = request_id_var.set(request.request_id)
        started = time.perf_counter()
        try:
            outcome = await self._perform(request)
        finally:
            request_id_var.reset(token)
        record_outcome(request.verb, request.surface, outcome.status)
        log.info(
            "execution %s %s",
            request.verb,
            outcome.status,
            extra={
                "request_id": request.request_id,
                "actor_id": request.actor.user_id,
                "surface": request.surface,
                "channel_id": request.channel_id,
                "execution_id": request.execution_id,
                "verb": request.verb,
                "result": outcome.status,
                "error_class": type(outcome.error).__name__ if outcome.error else None,
                "action_id": outcome.action_id,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            },
        )
        return outcome

    async def follow_unknown(self, outcome: ControlOutcome, answer: MessageRef | None) -> None:
        """The unknown outcome is shown at ``answer``: the reconciler reads it back from now on."""
        if outcome.status == "unknown" and outcome.action_id is not None:
            await self.lifecycle.hand_over(outcome.action_id, answer)

    async def _perform(self, request: ControlRequest) -> ControlOutcome:
        try:
            execution = await self.target.read(request)
        except CodeStreamError as exc:
            return await self._refused(request, "failed", exc, None)
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        scope = Scope(request.kind, execution.project, pipeline_of(execution))
        try:
            await self.access.check_action(request.spec.access, viewer, scope)
        except AccessDenied as denied:
            # A denial names no execution facts: the person may not be allowed to see them.
            return await self._refused(request, "denied", denied, execution, show=False)
        run = await self.lifecycle.run(self.target, request, execution)
        return await self._outcome(request, execution, run)

    async def _outcome(self, request: ControlRequest, execution: Execution, run: Run[Execution]) -> ControlOutcome:
        error = run.error if isinstance(run.error, CodeStreamError | BotError) else None
        action_id, url = run.action_id, self.execution_url(request.execution_id)
        if run.state == "lost":
            assert run.claim is not None
            data = run.claim.data
            verb = control_spec(str(data.get("verb") or "")) or request.spec
            actor = Actor(str(data.get("actor_id") or "someone"), _str(data.get("actor_name")))
            prior = PriorControl(actor, run.claim.claimed_at, verb.name)
            action_id = await self.lifecycle.audit(self.target.row(request, "duplicate", execution, None))
            return ControlOutcome(request, "duplicate", execution=execution, prior=prior, action_id=action_id)
        if run.state == "unknown":
            shown = run.target or execution
            return ControlOutcome(request, "unknown", shown, url, error, action_id=action_id, settle_by=run.settle_by)
        if run.state in ("succeeded", "not_started"):
            status: ControlStatus = "done" if run.state == "succeeded" else "not_started"
            return ControlOutcome(request, status, run.target or execution, url, error, action_id=action_id)
        if run.target is None and action_id is not None:  # the read under the claim failed
            return ControlOutcome(request, "failed", error=error, action_id=action_id)
        shown = run.target or execution
        return ControlOutcome(request, "failed", execution=shown, error=error, action_id=action_id)

    async def _refused(
        self,
        request: ControlRequest,
        status: ControlStatus,
        error: CodeStreamError | AccessDenied | NotActionable,
        execution: Execution | None,
        *,
        show: bool = True,
    ) -> ControlOutcome:
        action_id = await self.lifecycle.audit(self.target.row(request, status, execution, error))
        shown = execution if show else None
        return ControlOutcome(request, status, execution=shown, error=error, action_id=action_id)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
