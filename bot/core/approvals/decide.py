"""``ApprovalDecisions.decide(request) -> DecisionOutcome``: approve or reject a Code Stream
approval from Slack, exactly once, through the intent lifecycle the other actions use. No Slack.

Who may decide: the policy's ``approve`` action on the approval's project and pipeline, AND (by
default) only a person the operation lists — their Slack e-mail in ``approvers``, or their
membership of a Slack user group that BOT_CONFIG's ``approver_groups`` maps one of its
``approverGroups`` to. Code Stream's own check still applies: a 403 is shown as such.

The claim ``intent:approval:<id>`` serializes requests on one operation; the operation is read
again under the claim (decided meanwhile in vRA, expired: nothing is sent). One POST; an
ambiguous answer is settled by reading the operation back (the reconciler, ``ApprovalReadBack``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, DecisionIgnored, InvalidId, NotFound, Unavailable
from bot.codestream.user_operations import Decision, UserOperation
from bot.core.access import AccessPolicy, AllowEveryone, GroupDirectory, GroupLookupFailed, Scope, Viewer
from bot.core.approvals.ports import ApprovalEnd, ApprovalNotifier
from bot.core.approvals.watcher import end_of, show_end
from bot.core.errors import AccessDenied, BotError, StoreUnavailable
from bot.core.intents import (
    IN_FLIGHT_CLAIM_SECONDS,
    INTENT_PREFIX,
    about_to_send,
    audit_row,
    finish_action,
    give_up_unsent,
    mark_unknown,
    record_quietly,
    release_quietly,
    retry_write,
    stored_surface,
)
from bot.core.metrics import record_outcome
from bot.core.requests import Actor, Surface, new_request_id
from bot.store import ActionRecord, ApprovalRecord, Store

log = logging.getLogger("bot.core.approvals")

#: Audit rows of decisions: kind ``approval``, the operation id in ``event_id``.
APPROVAL_KIND: Final = "approval"
DONE: Final = "done"
ACTION_OF: Final[dict[Decision, str]] = {"APPROVED": "approve", "REJECTED": "reject"}

# done: Code Stream took the decision. ended: it was no longer pending (decided in vRA,
# expired, canceled): nothing was sent. The others as for reruns.
DecisionStatus: TypeAlias = Literal["done", "failed", "unknown", "not_started", "duplicate", "denied", "ended"]


class NotAnApprover(AccessDenied):
    """The policy allows it, but the operation does not list this person."""


@dataclass(frozen=True)
class DecisionRequest:
    operation_id: str
    decision: Decision
    message: str
    actor: Actor
    surface: Surface
    email: str | None = None  # the person's Slack e-mail (users.info, users:read.email)
    channel_id: str | None = None
    team_id: str | None = None
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class DecisionOutcome:
    request: DecisionRequest
    status: DecisionStatus
    operation: UserOperation | None = None
    error: CodeStreamError | BotError | None = None
    prior_actor: str | None = None  # duplicate: who is deciding it
    action_id: int | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def approval_intent_key(operation_id: str) -> str:
    return f"{INTENT_PREFIX}{APPROVAL_KIND}:{operation_id}"


@dataclass
class ApprovalDecisions:
    client: CodeStreamClient
    store: Store
    notifier: ApprovalNotifier
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default
    groups: GroupDirectory | None = None
    approver_groups: Mapping[str, str] = field(default_factory=dict)  # Code Stream group -> Slack S…
    listed_only: bool = True  # only the operation's approvers (and mapped groups) may decide
    owner: str = "codestream-bot"
    reconcile_seconds: float = 300.0
    post_budget_seconds: float = 120.0
    wake_reconciler: Callable[[], None] = field(default=lambda: None)

    # --- who may decide ------------------------------------------------------------------------

    async def refusal(self, request: DecisionRequest, operation: UserOperation) -> AccessDenied | None:
        """Why this person may not decide this operation (None: they may)."""
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        try:
            await self.access.check_action("approve", viewer, Scope(None, operation.project, operation.pipeline))
        except AccessDenied as denied:
            return denied
        if not self.listed_only:
            return None
        email = (request.email or "").strip().lower()
        if email and email in {a.strip().lower() for a in operation.approvers}:
            return None
        unchecked: list[str] = []
        for name in operation.approver_groups:
            group = self.approver_groups.get(name)
            if group is None or self.groups is None:
                continue
            try:
                if await self.groups.is_member(group, request.actor.user_id):
                    return None
            except GroupLookupFailed:
                unchecked.append(self.groups.handle(group))
        if unchecked:
            return NotAnApprover(
                f"The bot could not check your membership of {', '.join(unchecked)} right now; try again in a minute."
            )
        listed = ", ".join([*operation.approvers, *operation.approver_groups]) or "nobody"
        if not email:
            return NotAnApprover(
                "The bot cannot read your Slack e-mail address, so it cannot match you with this approval's "
                f"approvers ({listed}); decide in Code Stream."
            )
        return NotAnApprover(f"This approval is for {listed}; your Slack e-mail ({email}) is not among them.")

    async def refused(
        self, request: DecisionRequest, denied: AccessDenied, operation: UserOperation
    ) -> DecisionOutcome:
        """Someone ``refusal`` turned away before the form opened: audited like any denial."""
        return await self._finished(request, "denied", denied, operation)

    # --- deciding --------------------------------------------------------------------------

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
            operation = await self.client.get_user_operation(request.operation_id)
        except CodeStreamError as exc:
            return await self._finished(request, "failed", exc, None)
        denied = await self.refusal(request, operation)
        if denied is not None:
            return await self._finished(request, "denied", denied, operation)
        if not operation.pending:
            return await self._ended(request, operation)
        key, holder = approval_intent_key(request.operation_id), request.request_id
        data = {"actor_id": request.actor.user_id, "decision": request.decision}
        try:
            # One transaction: the claim and, if won, its audit row (``claimed``: nothing sent
            # yet), so no claim outlives its process without a row the reconciler can see.
            claimed = self._row(request, "claimed", operation)
            claim, action_id = await self.store.intents.claim(key, holder, IN_FLIGHT_CLAIM_SECONDS, data, claimed)
        except Exception:
            log.exception("store unavailable for claim")
            return DecisionOutcome(request, "failed", operation, StoreUnavailable())
        if not claim.won:
            action_id = await self._audit(request, "duplicate", operation=operation)
            prior = str(claim.data.get("actor_id") or "") or None
            return DecisionOutcome(request, "duplicate", operation, prior_actor=prior, action_id=action_id)
        assert action_id is not None  # store.intents.claim returns the row's id when it won
        try:
            return await self._claimed(request, key, holder, action_id)
        except BaseException:
            # Interrupted before anything was sent: the row closes as not started and the claim
            # is released. Once sent, _claimed has marked it unknown.
            await asyncio.shield(give_up_unsent(self.store, self.owner, action_id, key=key, holder=holder))
            raise

    async def _claimed(self, request: DecisionRequest, key: str, holder: str, action_id: int) -> DecisionOutcome:
        try:
            operation = await self.client.get_user_operation(request.operation_id)  # under the claim
        except CodeStreamError as exc:
            await self._finish(key, holder, action_id, "failed", error=exc)
            return DecisionOutcome(request, "failed", None, exc, action_id=action_id)
        if not operation.pending:
            await self._finish(key, holder, action_id, "ended")
            await self._show_ended(request, operation)
            return DecisionOutcome(request, "ended", operation, None, action_id=action_id)
        try:
            await about_to_send(self.store, self.owner, action_id)
        except Exception:
            log.exception("store unavailable for the audit row")
            await self._finish(key, holder, action_id, "failed", error=StoreUnavailable())
            return DecisionOutcome(request, "failed", operation, StoreUnavailable())
        try:
            async with asyncio.timeout(self.post_budget_seconds):
                result = await self.client.respond_to_user_operation(
                    request.operation_id, request.decision, message=request.message, before=operation
                )
        except TimeoutError:
            await mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error_class="Unavailable")
            return DecisionOutcome(
                request, "unknown", operation, Unavailable("Code Stream did not answer in time."), action_id=action_id
            )
        except CodeStreamError as exc:  # 4xx: a 403 when the bot's account may not respond
            await self._finish(key, holder, action_id, "failed", error=exc)
            return DecisionOutcome(request, "failed", operation, exc, action_id=action_id)
        except BaseException:
            await asyncio.shield(
                mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error_class="Interrupted")
            )
            raise
        if result.state == "unknown":
            await mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error=result.error)
            return DecisionOutcome(request, "unknown", operation, result.error, action_id=action_id)
        if result.state == "ignored":
            ignored = self._ignored(result.error, result.operation)
            await self._finish(key, holder, action_id, "failed", error=ignored)
            return DecisionOutcome(request, "failed", result.operation or operation, ignored, action_id=action_id)
        if result.state == "not_started":
            await self._finish(key, holder, action_id, "not_started", error=result.error)
            return DecisionOutcome(request, "not_started", operation, result.error, action_id=action_id)
        await self._finish(key, holder, action_id, DONE)
        after = result.operation or operation
        await self.show_decided(request.operation_id, after, request.decision, request.actor.user_id, request.message)
        return DecisionOutcome(request, "done", after, action_id=action_id)

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

    async def _finish(self, key: str, holder: str, action_id: int, status: str, **closing: Any) -> None:
        """Close the row with a known outcome and release the claim, in one transaction."""
        await finish_action(
            self.store, self.owner, action_id, status, key=key, holder=holder, settle_for=None, **closing
        )

    async def show_decided(
        self, operation_id: str, operation: UserOperation, decision: Decision, actor_id: str, message: str
    ) -> None:
        """The request message, redrawn: "✅ Approved by @alice: looks good"."""
        record = await self._record(operation_id)
        if record is not None:
            end = ApprovalEnd(decision, "slack", actor_id, message or None)
            await show_end(self.store, self.notifier, record, operation, end)

    async def _ended(self, request: DecisionRequest, operation: UserOperation) -> DecisionOutcome:
        """Decided in vRA, expired or canceled: the message says so now, not at the next poll."""
        await self._show_ended(request, operation)
        return await self._finished(request, "ended", None, operation)

    async def _show_ended(self, request: DecisionRequest, operation: UserOperation) -> None:
        record = await self._record(request.operation_id)
        end = await end_of(self.store, operation, self.client.auth.account())
        if record is not None and end is not None:
            await show_end(self.store, self.notifier, record, operation, end)

    async def _record(self, operation_id: str) -> ApprovalRecord | None:
        try:
            return await self.store.approvals.get(operation_id)
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
        action_id = await self._audit(request, status, error=error, operation=operation)
        return DecisionOutcome(request, status, operation, error, action_id=action_id)

    async def _audit(
        self,
        request: DecisionRequest,
        status: str,
        *,
        error: Exception | None = None,
        operation: UserOperation | None = None,
    ) -> int | None:
        return await record_quietly(self.store, self._row(request, status, operation, error=error))

    def _row(
        self, request: DecisionRequest, status: str, operation: UserOperation | None, *, error: Exception | None = None
    ) -> ActionRecord:
        """The audit row: kind ``approval``, the operation id in ``event_id``."""
        return audit_row(
            now=self.store.now(),
            kind=APPROVAL_KIND,
            target_id=request.operation_id,
            action=ACTION_OF[request.decision],
            actor=request.actor,
            surface=request.surface,
            channel_id=request.channel_id,
            request_id=request.request_id,
            status=status,
            error=error,
            owner=self.owner,
            open_seconds=self.post_budget_seconds + self.reconcile_seconds,
            project=operation.project if operation is not None else None,
            pipeline=operation.pipeline if operation is not None else None,
        )

    async def _release(self, key: str, holder: str) -> None:
        await release_quietly(self.store, key, holder)


# --- the reconciler's side -----------------------------------------------------------------------

ReadVerdict: TypeAlias = Literal["done", "not_started", "gone", "later", "unreadable"]


class ApprovalReadBack:
    """Settles a decision whose answer was ambiguous: the operation read back shows it decided as
    asked (done), still pending at the deadline (not started: safe to try again), or decided
    otherwise / gone (unknown: not ours to claim)."""

    def __init__(self, decisions: ApprovalDecisions) -> None:
        self.decisions = decisions

    async def read(self, row: ActionRecord, now: datetime) -> tuple[ReadVerdict, UserOperation | None]:
        try:
            # The reconciler's read: the background pool, never behind people's slow requests.
            operation = await self.decisions.client.background.get_user_operation(row.event_id)
        except (NotFound, InvalidId):
            return "gone", None
        except CodeStreamError:
            return "unreadable", None
        wanted = "APPROVED" if row.action == "approve" else "REJECTED"
        if operation.status == wanted:
            return "done", operation
        if not operation.pending:
            return "gone", operation
        if row.settle_by is not None and now >= row.settle_by:
            return "not_started", operation
        return "later", operation

    async def settle(self, row: ActionRecord, status: str, operation: UserOperation | None, now: datetime) -> bool:
        assert row.id is not None
        action_id, decisions = row.id, self.decisions
        changes = {"status": DONE if status == "done" else status, "finished_at": now, "next_check_at": None}
        if not await retry_write(lambda: decisions.store.actions.update_open(action_id, decisions.owner, **changes)):
            return False
        await decisions._release(approval_intent_key(row.event_id), row.request_id or "")
        if status == "done" and operation is not None:
            decision: Decision = "APPROVED" if row.action == "approve" else "REJECTED"
            # Code Stream keeps the response message: the redrawn request shows it from there.
            await decisions.show_decided(
                row.event_id, operation, decision, row.actor_id, operation.response_message or ""
            )
        elif operation is not None and operation.status not in (None, "ACTIVE"):
            record = await decisions._record(row.event_id)
            end = await end_of(decisions.store, operation, decisions.client.auth.account())
            if record is not None and end is not None:
                await show_end(decisions.store, decisions.notifier, record, operation, end)
        log.info(
            "approval decision settled %s after reading it back",
            status,
            extra={"action_id": action_id, "surface": stored_surface(row.surface)},
        )
        return True


__all__ = [
    "APPROVAL_KIND",
    "ApprovalDecisions",
    "ApprovalReadBack",
    "DecisionOutcome",
    "DecisionRequest",
    "DecisionStatus",
    "NotAnApprover",
]
