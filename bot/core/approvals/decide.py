"""``ApprovalDecisions.decide(request) -> DecisionOutcome``: approve or reject a Code Stream
approval from Slack — the adapter of user operations to the one intent lifecycle
(``bot.core.lifecycle``). No Slack.

Who may decide is ``approvers.Approvers``. The runner claims ``intent:approval:<id>`` with a
``claimed`` row and reads the operation again under the claim (decided meanwhile in vRA,
expired: nothing is sent, and the request message says how it ended). One POST; an ambiguous
answer is settled by reading the operation back (``readback.ApprovalReadBack``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, DecisionIgnored
from bot.codestream.user_operations import Decision, UserOperation
from bot.core.approvals.approvers import Approvers
from bot.core.approvals.ports import ApprovalEnd, ApprovalNotifier
from bot.core.approvals.requests import (
    ACTION_OF,
    APPROVAL_KIND,
    DecisionOutcome,
    DecisionRequest,
    DecisionStatus,
    NotAnApprover,
    approval_intent_key,
)
from bot.core.approvals.watcher import end_of, show_end
from bot.core.errors import AccessDenied, BotError
from bot.core.lifecycle import Closing, Intent, Lifecycle, Run, Sent
from bot.core.metrics import record_outcome
from bot.core.requests import MessageRef
from bot.store import ActionRecord, ApprovalRecord

log = logging.getLogger("bot.core.approvals")

DONE = "done"


@dataclass
class ApprovalTarget:
    """The adapter: what is specific to deciding a user operation."""

    client: CodeStreamClient
    lifecycle: Lifecycle

    reread = True  # decided meanwhile in vRA, expired, canceled: nothing is sent

    def intent(self, request: DecisionRequest) -> Intent:
        data = {"actor_id": request.actor.user_id, "decision": request.decision}
        return Intent(approval_intent_key(request.operation_id), request.request_id, data)

    def row(
        self, request: DecisionRequest, status: str, target: UserOperation | None, error: Exception | None
    ) -> ActionRecord:
        """The audit row: kind ``approval``, the operation id in ``event_id``."""
        return self.lifecycle.row(
            request,
            status,
            error,
            kind=APPROVAL_KIND,
            target_id=request.operation_id,
            action=ACTION_OF[request.decision],
            project=target.project if target is not None else None,
            pipeline=target.pipeline if target is not None else None,
        )

    async def read(self, request: DecisionRequest) -> UserOperation:
        return await self.client.get_user_operation(request.operation_id)

    def stale(self, request: DecisionRequest, target: UserOperation) -> Closing | None:
        return None if target.pending else Closing("ended")

    async def send(self, request: DecisionRequest, target: UserOperation) -> Sent[UserOperation]:
        result = await self.client.respond_to_user_operation(
            request.operation_id, request.decision, message=request.message, before=target
        )
        return Sent(result.state, result.before, result.operation, result.error)

    async def refused(self, request: DecisionRequest, error: CodeStreamError) -> tuple[UserOperation, Closing] | None:
        return None  # 4xx: a 403 when the bot's account may not respond, shown as such

    def closing(self, request: DecisionRequest, sent: Sent[UserOperation]) -> Closing:
        if sent.state == "succeeded":
            return Closing(DONE)
        if sent.state == "ignored":
            return Closing("failed", self._ignored(sent.error, sent.after))
        return Closing("not_started", sent.error)

    def _ignored(self, error: CodeStreamError | None, operation: UserOperation | None) -> DecisionIgnored:
        """What to tell the person when Code Stream, read back, did not take the decision."""
        said = error.server_message if error is not None else None
        status = operation.status if operation is not None else None
        if status not in (None, "ACTIVE"):
            return DecisionIgnored(f"Code Stream did not take the decision: the approval is {status.lower()}.")
        account = self.client.auth.account()
        who = f"the bot's account {account}" if account else "the bot's account"
        return DecisionIgnored(
            f"Code Stream kept the request open: {who} is not among its approvers — add it, or decide in Code Stream.",
            server_message=said,
        )


@dataclass
class ApprovalDecisions:
    """Approve and reject: who may, the runner, and the request message redrawn at the end."""

    target: ApprovalTarget
    notifier: ApprovalNotifier
    approvers: Approvers

    @property
    def lifecycle(self) -> Lifecycle:
        return self.target.lifecycle

    async def refusal(self, request: DecisionRequest, operation: UserOperation) -> AccessDenied | None:
        """Why this person may not decide this operation (None: they may)."""
        return await self.approvers.refusal(request, operation)

    async def refused(
        self, request: DecisionRequest, denied: AccessDenied, operation: UserOperation
    ) -> DecisionOutcome:
        """Someone ``refusal`` turned away before the form opened: audited like any denial."""
        return await self._finished(request, "denied", denied, operation)

    async def read(self, operation_id: str) -> UserOperation:
        """The operation as Code Stream has it now (the form shows it); raises CodeStreamError."""
        return await self.target.client.get_user_operation(operation_id)

    async def follow_unknown(self, outcome: DecisionOutcome, answer: MessageRef | None) -> None:
        """The unknown outcome is shown at ``answer``: the reconciler reads it back from now on."""
        if outcome.status == "unknown" and outcome.action_id is not None:
            await self.lifecycle.hand_over(outcome.action_id, answer)

    async def decide(self, request: DecisionRequest) -> DecisionOutcome:
        outcome = await self._decide(request)
        record_outcome(ACTION_OF[request.decision], request.surface, outcome.status)
        log.info(
            "approval %s %s",
            ACTION_OF[request.decision],
            outcome.status,
            extra={
                "request_id": request.request_id,
                "actor_id": request.actor.user_id,
                "operation_id": request.operation_id,
                "result": outcome.status,
                "error_class": type(outcome.error).__name__ if outcome.error else None,
                "action_id": outcome.action_id,
            },
        )
        return outcome

    async def _decide(self, request: DecisionRequest) -> DecisionOutcome:
        try:
            operation = await self.target.read(request)
        except CodeStreamError as exc:
            return await self._finished(request, "failed", exc, None)
        denied = await self.refusal(request, operation)
        if denied is not None:
            return await self._finished(request, "denied", denied, operation)
        if not operation.pending:
            # Decided in vRA, expired or canceled: the message says so now, not at the next poll.
            await self.show_ended(request.operation_id, operation)
            return await self._finished(request, "ended", None, operation)
        run = await self.lifecycle.run(self.target, request, operation)
        return await self._outcome(request, operation, run)

    async def _outcome(
        self, request: DecisionRequest, operation: UserOperation, run: Run[UserOperation]
    ) -> DecisionOutcome:
        error = run.error if isinstance(run.error, CodeStreamError | BotError) else None
        action_id = run.action_id
        if run.state == "lost":
            assert run.claim is not None
            prior = str(run.claim.data.get("actor_id") or "") or None
            action_id = await self.lifecycle.audit(self.target.row(request, "duplicate", operation, None))
            return DecisionOutcome(request, "duplicate", operation, prior_actor=prior, action_id=action_id)
        if run.state == "stale":
            assert run.target is not None
            await self.show_ended(request.operation_id, run.target)
            return DecisionOutcome(request, "ended", run.target, None, action_id=action_id)
        if run.state == "succeeded":
            after = run.target or operation
            await self.show_decided(
                request.operation_id, after, request.decision, request.actor.user_id, request.message
            )
            return DecisionOutcome(request, "done", after, action_id=action_id)
        if run.state == "ignored":
            return DecisionOutcome(request, "failed", run.target or operation, error, action_id=action_id)
        if run.state in ("unknown", "not_started"):
            return DecisionOutcome(request, run.state, operation, error, action_id=action_id)
        return DecisionOutcome(request, "failed", run.target, error, action_id=action_id)

    async def show_decided(
        self, operation_id: str, operation: UserOperation, decision: Decision, actor_id: str, message: str
    ) -> None:
        """The request message, redrawn: "✅ Approved by @alice: looks good"."""
        record = await self.record(operation_id)
        if record is not None:
            end = ApprovalEnd(decision, "slack", actor_id, message or None)
            await show_end(self.lifecycle.store, self.notifier, record, operation, end)

    async def show_ended(self, operation_id: str, operation: UserOperation) -> None:
        """How an approval that is no longer pending ended, on its request message."""
        record = await self.record(operation_id)
        end = await end_of(self.lifecycle.store, operation, self.target.client.auth.account())
        if record is not None and end is not None:
            await show_end(self.lifecycle.store, self.notifier, record, operation, end)

    async def record(self, operation_id: str) -> ApprovalRecord | None:
        try:
            return await self.lifecycle.store.approvals.get(operation_id)
        except Exception:
            log.exception("approval lookup failed")
            return None

    async def _finished(
        self,
        request: DecisionRequest,
        status: DecisionStatus,
        error: CodeStreamError | BotError | None,
        operation: UserOperation | None,
    ) -> DecisionOutcome:
        action_id = await self.lifecycle.audit(self.target.row(request, status, operation, error))
        return DecisionOutcome(request, status, operation, error, action_id=action_id)


__all__ = [
    "APPROVAL_KIND",
    "DONE",
    "ApprovalDecisions",
    "ApprovalTarget",
    "DecisionOutcome",
    "DecisionRequest",
    "DecisionStatus",
    "NotAnApprover",
]
