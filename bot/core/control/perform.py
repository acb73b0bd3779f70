"""``ExecutionControl.perform(request) -> ControlOutcome``: cancel, pause or resume an execution,
exactly once, through the same intent lifecycle as reruns (``bot.core.intents``). No Slack here.

1. read the execution (an unknown id fails here, before anything is claimed)
2. access: the verb's access action (``cancel`` or ``pause``) on the execution's project and
   pipeline; refused requests are audited
3. claim ``intent:execution:<id>`` and, in the same transaction, its audit row (``claimed``:
   nothing sent yet): one request on an execution at a time, whatever the verb; the others
   (double clicks, Slack retries, replicas) are told who is acting. A process that dies holding
   the claim leaves a row the reconciler closes at once (nothing was sent).
4. read the execution again *under the claim* and check its status allows the action: a second
   click that lost the race sees "already PAUSED" instead of sending a second POST
5. the row becomes ``pending``, then ONE ``POST …/executions/{id}?action=``. An ambiguous answer makes
   the outcome *unknown*: the claim stays and the reconciler reads the execution back (its
   status says whether the action took effect) until the deadline. Never a second POST.
6. a known outcome releases the claim: from then on the execution's status is the guard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, Unavailable
from bot.codestream.execution_actions import ExecutionActionResult, can_start, is_over, status_of, took_effect
from bot.codestream.executions import Execution
from bot.core.access import AccessPolicy, AllowEveryone, Scope, Viewer
from bot.core.control.requests import (
    ControlOutcome,
    ControlRequest,
    ControlStatus,
    NotActionable,
    PriorControl,
    pipeline_of,
)
from bot.core.control.verbs import EXECUTION_KIND, control_spec, reason_for
from bot.core.errors import AccessDenied, StoreUnavailable
from bot.core.intents import (
    IN_FLIGHT_CLAIM_SECONDS,
    INTENT_PREFIX,
    about_to_send,
    audit_row,
    finish_action,
    give_up_unsent,
    hand_to_reconciler,
    mark_unknown,
    record_quietly,
)
from bot.core.logs import request_id as request_id_var
from bot.core.metrics import record_outcome
from bot.core.requests import Actor, MessageRef
from bot.store import ActionRecord, Store

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
class ExecutionControl:
    client: CodeStreamClient
    store: Store
    execution_url: Callable[[str], str]  # execution id -> the human UI link
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default
    owner: str = "codestream-bot"
    reconcile_seconds: float = 300.0
    post_budget_seconds: float = 120.0
    wake_reconciler: Callable[[], None] = field(default=lambda: None)

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
            await hand_to_reconciler(self.store, self.owner, outcome.action_id, answer, self.wake_reconciler)

    # --- the steps ---------------------------------------------------------------------------

    async def _perform(self, request: ControlRequest) -> ControlOutcome:
        try:
            execution = await self.client.get_execution(request.execution_id)
        except CodeStreamError as exc:
            return await self._refused(request, "failed", exc, None)
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        scope = Scope(request.kind, execution.project, pipeline_of(execution))
        try:
            await self.access.check_action(request.spec.access, viewer, scope)
        except AccessDenied as denied:
            # A denial names no execution facts: the person may not be allowed to see them.
            return await self._refused(request, "denied", denied, execution, show=False)
        return await self._claimed(request, execution)

    async def _claimed(self, request: ControlRequest, execution: Execution) -> ControlOutcome:
        key, holder = execution_intent_key(request.execution_id), request.request_id
        data = {"actor_id": request.actor.user_id, "actor_name": request.actor.name, "verb": request.verb}
        try:
            # One transaction: the claim and, if won, its audit row (``claimed``: nothing sent
            # yet), so no claim outlives its process without a row the reconciler can see.
            claimed = self._row(request, "claimed", execution=execution)
            claim, action_id = await self.store.intents.claim(key, holder, IN_FLIGHT_CLAIM_SECONDS, data, claimed)
        except Exception as exc:
            log.exception("store unavailable for claim", extra={"error_class": type(exc).__name__})
            return ControlOutcome(request, "failed", execution=execution, error=StoreUnavailable())
        if not claim.won:
            verb = control_spec(str(claim.data.get("verb") or "")) or request.spec
            prior = PriorControl(
                Actor(str(claim.data.get("actor_id") or "someone"), _str(claim.data.get("actor_name"))),
                claim.claimed_at,
                verb.name,
            )
            action_id = await self._audit(request, "duplicate", execution=execution)
            return ControlOutcome(request, "duplicate", execution=execution, prior=prior, action_id=action_id)
        assert action_id is not None  # store.intents.claim returns the row's id when it won
        try:
            return await self._act(request, key, holder, action_id)
        except BaseException:
            # Interrupted (a shutdown past its grace) before anything was sent: the row closes as
            # not started and the claim is released. Once sent, _act has marked it unknown.
            await asyncio.shield(give_up_unsent(self.store, self.owner, action_id, key=key, holder=holder))
            raise

    async def _act(self, request: ControlRequest, key: str, holder: str, action_id: int) -> ControlOutcome:
        try:
            # Under the claim: a request that finished a moment ago has changed the status.
            execution = await self.client.get_execution(request.execution_id)
        except CodeStreamError as exc:
            await self._finish(key, holder, action_id, "failed", error=exc)
            return ControlOutcome(request, "failed", error=exc, action_id=action_id)
        if not can_start(request.spec.action, execution):
            refused = not_actionable(request, execution)
            await self._finish(key, holder, action_id, "failed", error=refused)
            return ControlOutcome(request, "failed", execution=execution, error=refused, action_id=action_id)
        try:
            await about_to_send(self.store, self.owner, action_id)
        except Exception as exc:
            log.exception("store unavailable for the audit row", extra={"error_class": type(exc).__name__})
            await self._finish(key, holder, action_id, "failed", error=StoreUnavailable())
            return ControlOutcome(request, "failed", execution=execution, error=StoreUnavailable())
        reason = reason_for(request.spec, request.actor.name, request.actor.user_id)
        try:
            async with asyncio.timeout(self.post_budget_seconds):
                result = await self.client.act_on_execution(
                    request.execution_id, request.spec.action, reason=reason, before=execution
                )
        except TimeoutError:
            error = Unavailable("Code Stream did not answer in time.")
            return await self._unknown(request, action_id, execution, error)
        except CodeStreamError as exc:
            # A definite refusal (4xx): nothing happened. When it is because the action was
            # already taken (our read lagged behind Code Stream), say that, as a fresh read shows.
            done = await self._already_done(request)
            if done is not None:
                refused = not_actionable(request, done)
                await self._finish(key, holder, action_id, "failed", error=refused)
                return ControlOutcome(request, "failed", execution=done, error=refused, action_id=action_id)
            await self._finish(key, holder, action_id, "failed", error=exc)
            return ControlOutcome(request, "failed", execution=execution, error=exc, action_id=action_id)
        except BaseException:
            await asyncio.shield(
                mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error_class="Interrupted")
            )
            raise
        return await self._record(request, key, holder, action_id, result)

    async def _already_done(self, request: ControlRequest) -> Execution | None:
        """The execution as read now, if it shows the action already taken (else None)."""
        try:
            execution = await self.client.get_execution(request.execution_id)
        except CodeStreamError:
            return None
        return execution if took_effect(request.spec.action, execution) else None

    async def _finish(self, key: str, holder: str, action_id: int, status: str, **closing: Any) -> None:
        """Close the row with a known outcome and release the claim, in one transaction."""
        await finish_action(
            self.store, self.owner, action_id, status, key=key, holder=holder, settle_for=None, **closing
        )

    async def _record(
        self, request: ControlRequest, key: str, holder: str, action_id: int, result: ExecutionActionResult
    ) -> ControlOutcome:
        if result.state == "unknown":
            return await self._unknown(request, action_id, result.before, result.error)
        status: ControlStatus = "done" if result.state == "succeeded" else "not_started"
        error = result.error if status != "done" else None
        await self._finish(
            key, holder, action_id, DONE if status == "done" else status, error=error, execution_id=request.execution_id
        )
        execution = result.execution or result.before
        return ControlOutcome(
            request,
            status,
            execution=execution,
            execution_url=self.execution_url(request.execution_id),
            error=error,
            action_id=action_id,
        )

    async def _unknown(
        self, request: ControlRequest, action_id: int, execution: Execution, error: CodeStreamError | None
    ) -> ControlOutcome:
        settle_by = await mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error=error)
        return ControlOutcome(
            request,
            "unknown",
            execution=execution,
            execution_url=self.execution_url(request.execution_id),
            error=error,
            action_id=action_id,
            settle_by=settle_by,
        )

    async def _refused(
        self,
        request: ControlRequest,
        status: ControlStatus,
        error: CodeStreamError | AccessDenied | NotActionable,
        execution: Execution | None,
        *,
        show: bool = True,
    ) -> ControlOutcome:
        action_id = await self._audit(request, status, error=error, execution=execution)
        shown = execution if show else None
        return ControlOutcome(request, status, execution=shown, error=error, action_id=action_id)

    async def _audit(
        self,
        request: ControlRequest,
        status: str,
        *,
        error: Exception | None = None,
        execution: Execution | None = None,
    ) -> int | None:
        return await record_quietly(self.store, self._row(request, status, error=error, execution=execution))

    def _row(
        self, request: ControlRequest, status: str, *, error: Exception | None = None, execution: Execution | None
    ) -> ActionRecord:
        """The audit row: kind ``execution``, the execution id in ``event_id``."""
        return audit_row(
            now=self.store.now(),
            kind=EXECUTION_KIND,
            target_id=request.execution_id,
            action=request.verb,
            actor=request.actor,
            surface=request.surface,
            channel_id=request.channel_id,
            request_id=request.request_id,
            status=status,
            error=error,
            owner=self.owner,
            open_seconds=self.post_budget_seconds + self.reconcile_seconds,
            project=execution.project if execution is not None else None,
            pipeline=pipeline_of(execution),
            before_execution_index=execution.index if execution is not None else None,
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
