"""``perform(request) -> Outcome``: the one path every surface takes. No Slack in here.

1. read the event (unknown ids fail here, before anything is posted)
2. access: may this person do this, here, to this event?
3. claim the intent in the store: one intent per event at a time, whatever the verb. The claim
   holds while the action is in flight (pending, or unknown until read back) and for the dedupe
   window after it ends; everyone else (double clicks, Slack retries, other replicas, the other
   verb) is told what is already happening
4. record a pending row (the audit trail, and what a reconciler needs after a crash; in the
   claim's transaction: both or neither), then call Code Stream once. When the answer is
   ambiguous the outcome is *unknown*: the intent stays claimed and the reconciler
   (``bot.core.reconcile``) reads the event back until a new execution appears or the deadline
   passes. Never a second POST.
5. record the outcome and end the claim (one transaction); writes after Code Stream acted are
   retried
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeVar

from bot.codestream.client import ActionResult, CodeStreamClient
from bot.codestream.errors import CodeStreamError, Unavailable
from bot.codestream.models import Event
from bot.core.access import AccessPolicy, AllowEveryone
from bot.core.errors import AccessDenied, StoreUnavailable, Superseded
from bot.core.intents import (
    IN_FLIGHT_CLAIM_SECONDS,
    finish_action,
    hand_to_reconciler,
    intent_key,
    log_outcome,
    mark_unknown,
    retry_write,
    user_message,
    without_execution,
)
from bot.core.logs import request_id as request_id_var
from bot.core.requests import (
    ActionRequest,
    Actor,
    MessageRef,
    Outcome,
    OutcomeStatus,
    PriorAction,
    Verb,
)
from bot.core.verbs import VERBS, stored_verb
from bot.store import ActionRecord, Store

log = logging.getLogger(__name__)
_T = TypeVar("_T")

OnClaimed = Callable[[Event], Awaitable[None]]
_RESULT_STATUS: Final[dict[str, OutcomeStatus]] = {
    "succeeded": "started",
    "not_started": "not_started",
    "unknown": "unknown",
}


@dataclass
class Actions:
    client: CodeStreamClient
    store: Store
    execution_url: Callable[[str], str]  # execution id -> the human UI link
    dedupe_seconds: float = 300.0
    reconcile_seconds: float = 300.0
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default
    owner: str = "codestream-bot"  # this replica: it finishes what it starts
    post_budget_seconds: float = 120.0  # how long a POST (with its unsent retries) may take at most
    wake_reconciler: Callable[[], None] = field(default=lambda: None)

    async def perform(self, request: ActionRequest, *, on_claimed: OnClaimed | None = None) -> Outcome:
        """Carry out the request. ``on_claimed(event)`` runs once this caller has won the claim,
        before Code Stream is called (the Slack layer marks the alert "rerun requested")."""
        token = request_id_var.set(request.request_id)
        started = time.perf_counter()
        try:
            outcome = await self._perform(request, on_claimed)
        finally:
            request_id_var.reset(token)
        log_outcome(outcome, time.perf_counter() - started)
        return outcome

    async def follow_unknown(self, outcome: Outcome, summary: MessageRef | None) -> None:
        """The Slack layer has shown an unknown outcome (``summary``: where, to update in place):
        from now on the reconciler reads the event back and settles it."""
        if outcome.status != "unknown" or outcome.action_id is None:
            return
        await hand_to_reconciler(self.store, self.owner, outcome.action_id, summary, self.wake_reconciler)

    async def _perform(self, request: ActionRequest, on_claimed: OnClaimed | None) -> Outcome:
        try:
            # Before anything is read: someone no rule could allow here learns nothing, not even
            # whether the event exists.
            await self.access.precheck(request)
        except AccessDenied as denied:
            if VERBS[request.verb].mutates:
                await self._audit(self._record(request, "denied", error=denied))
            return Outcome(request, "denied", error=denied)
        try:
            event = await self.client.get_event(request.kind, request.event_id)
        except CodeStreamError as exc:
            mutates = VERBS[request.verb].mutates
            action_id = await self._audit(self._record(request, "failed", error=exc)) if mutates else None
            return Outcome(request, "failed", error=exc, action_id=action_id)
        try:
            await self.access.check(request, event)
        except AccessDenied as denied:
            if VERBS[request.verb].mutates:
                await self._audit(self._record(request, "denied", error=denied, event=event))
            # A denial names no event facts: the person may not be allowed to see them either.
            return Outcome(request, "denied", error=denied)
        if not VERBS[request.verb].mutates:
            return Outcome(request, "shown", event=event, execution_url=self._url_for(event))
        return await self._act(request, event, on_claimed)

    async def _act(self, request: ActionRequest, event: Event, on_claimed: OnClaimed | None) -> Outcome:
        key = intent_key(request.kind, request.event_id)
        holder = request.request_id
        data = {"actor_id": request.actor.user_id, "actor_name": request.actor.name, "verb": request.verb}
        # The run the person saw is not the latest any more (rerun from vRA, or by someone whose
        # claim has ended): nothing is sent. Acted on under the claim, after "already in hand",
        # which says more while the other run is fresh.
        superseded = request.expected_index is not None and event.execution_index != request.expected_index
        action_id: int | None = None
        try:
            if superseded:
                claim = await self.store.claims.claim(key, holder, IN_FLIGHT_CLAIM_SECONDS, data)
            else:
                # One transaction: the claim and, if won, the pending row and its id in the claim.
                pending = self._record(request, "pending", event=event)
                claim, action_id = await self.store.intents.claim(key, holder, IN_FLIGHT_CLAIM_SECONDS, data, pending)
        except Exception as exc:
            # Without the claim (and the pending row) we cannot promise "exactly once": refuse
            # rather than risk two runs. Nothing was written: a retry can run.
            log.exception("store unavailable for claim", extra={"error_class": type(exc).__name__})
            return Outcome(request, "failed", event=event, error=StoreUnavailable())
        if not claim.won:
            return await self._duplicate(request, event, claim.data, claim.claimed_at)
        if superseded:
            await self._quietly(lambda: self.store.claims.release(key, holder))
            moved = Superseded()
            failed_id = await self._audit(self._record(request, "failed", error=moved, event=event))
            return Outcome(request, "failed", event=event, error=moved, action_id=failed_id)
        assert action_id is not None  # store.intents.claim returns the pending row's id when it won
        if on_claimed is not None:
            try:
                await on_claimed(event)
            except Exception:
                log.exception("on_claimed hook failed; carrying on with the action")
        try:
            action = VERBS[request.verb].codestream_action
            if action is None:  # _perform sends only mutating verbs here
                raise TypeError(f"{request.verb} does not act on Code Stream")
            # Bounded, so that the reconciler (which takes over rows open for longer than this)
            # never works on an action this process is still waiting on.
            async with asyncio.timeout(self.post_budget_seconds):
                result = await self.client.act(request.kind, request.event_id, action, before=event)
        except TimeoutError:
            error = Unavailable("Code Stream did not answer in time.")
            settle_by = await self._mark_unknown(action_id, error=error)
            shown = without_execution(event)
            return Outcome(request, "unknown", event=shown, error=error, action_id=action_id, settle_by=settle_by)
        except CodeStreamError as exc:
            # A definite refusal (4xx, or nothing could be sent): nothing ran, a retry is fine.
            await self._finish(key, holder, action_id, "failed", error=exc)
            return Outcome(request, "failed", event=event, error=exc, action_id=action_id)
        except BaseException:
            # Cancelled (shutdown past its grace) or a bug while the POST may be on its way: the
            # outcome is unknown; the reconciler reads it back. The claim stays.
            await asyncio.shield(self._mark_unknown(action_id, error_class="Interrupted"))
            raise
        return await self._record_result(request, key, action_id, result)

    async def _record_result(self, request: ActionRequest, key: str, action_id: int, result: ActionResult) -> Outcome:
        status = _RESULT_STATUS[result.state]
        error = result.error if status != "started" else None
        if status == "unknown":
            settle_by = await self._mark_unknown(action_id, error=error)
            event = without_execution(result.before)
            return Outcome(request, "unknown", event=event, error=error, action_id=action_id, settle_by=settle_by)
        after = result.event
        await self._finish(
            key,
            request.request_id,
            action_id,
            status,
            error=error,
            execution_link=after.execution_link if after is not None else None,
            execution_id=after.execution_id if after is not None else None,
        )
        # Accepted but unreadable: show the event without its old execution, which would
        # otherwise pass for the new one.
        event = after if after is not None else without_execution(result.before)
        url = self._url_for(after) if after is not None else None
        return Outcome(request, status, event=event, execution_url=url, error=error, action_id=action_id)

    async def _duplicate(self, request: ActionRequest, event: Event, data: dict[str, object], at: datetime) -> Outcome:
        winner_action_id = data.get("action_id")
        winner: ActionRecord | None = None
        if isinstance(winner_action_id, int):
            winner = await self._quietly(lambda: self.store.actions.get(winner_action_id))
        verb = data.get("verb")
        prior = PriorAction(
            actor=Actor(str(data.get("actor_id") or "someone"), _str_or_none(data.get("actor_name"))),
            at=at,
            status=winner.status if winner is not None else "pending",
            execution_url=self.execution_url(winner.execution_id) if winner and winner.execution_id else None,
            verb=_verb(verb) if isinstance(verb, str) else request.verb,
        )
        row = self._record(request, "duplicate", duplicate_of=winner.id if winner else None, event=event)
        action_id = await self._audit(row)
        return Outcome(request, "duplicate", event=event, prior=prior, action_id=action_id)

    async def _audit(self, record: ActionRecord) -> int:
        """Write the audit row of a request that ends here (denied, failed, duplicate)."""
        return await self.store.actions.record(record)

    def _record(
        self,
        request: ActionRequest,
        status: str,
        *,
        error: Exception | None = None,
        duplicate_of: int | None = None,
        event: Event | None = None,
    ) -> ActionRecord:
        """The audit row; a ``pending`` row carries what finishing it needs (the event as it
        was, the alert) and is finished by ``_finish``, ``_mark_unknown`` or the reconciler."""
        now = self.store.now()
        pending = status == "pending"
        before = event if pending else None
        alert = request.alert
        return ActionRecord(
            kind=request.kind,
            event_id=request.event_id,
            action=request.verb,
            actor_id=request.actor.user_id,
            actor_name=request.actor.name,
            surface=request.surface,
            channel_id=request.channel_id,
            status=status,
            error=user_message(error),
            error_class=type(error).__name__ if error else None,
            duplicate_of=duplicate_of,
            request_id=request.request_id,
            created_at=now,
            finished_at=None if pending else now,
            owner=self.owner if pending else None,
            before_execution_index=before.execution_index if before is not None else None,
            before_execution_link=before.execution_link if before is not None else None,
            settle_by=now + timedelta(seconds=self.post_budget_seconds + self.reconcile_seconds) if pending else None,
            alert_channel=alert.channel if alert is not None and pending else None,
            alert_ts=alert.ts if alert is not None and pending else None,
            alert_thread_ts=alert.thread_ts if alert is not None and pending else None,
            project=event.project if event is not None else None,
            pipeline=event.pipeline if event is not None else None,
        )

    async def _finish(
        self,
        key: str,
        holder: str,
        action_id: int,
        status: str,
        *,
        error: Exception | None = None,
        execution_link: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        """Code Stream answered: close the row and, in the same transaction, end the claim (a
        run that started keeps it for the dedupe window; anything else gives it back)."""
        await finish_action(
            self.store,
            self.owner,
            action_id,
            status,
            key=key,
            holder=holder,
            settle_for=self.dedupe_seconds if status == "started" else None,
            error=error,
            execution_link=execution_link,
            execution_id=execution_id,
        )

    async def _mark_unknown(
        self, action_id: int, *, error: Exception | None = None, error_class: str | None = None
    ) -> datetime:
        return await mark_unknown(
            self.store, self.owner, action_id, self.reconcile_seconds, error=error, error_class=error_class
        )

    async def _quietly(self, operation: Callable[[], Awaitable[_T]]) -> _T | None:
        """A retried write (or read) whose failure is logged, not raised."""
        try:
            return await retry_write(operation)
        except Exception:
            log.warning("store write failed", exc_info=True)
            return None

    def _url_for(self, event: Event) -> str | None:
        return self.execution_url(event.execution_id) if event.execution_id else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _verb(value: str) -> Verb:
    return stored_verb(value)
