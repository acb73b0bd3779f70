"""``perform(request) -> Outcome``: the one path every surface takes. No Slack in here.

1. read the event (unknown ids fail here, before anything is posted)
2. access: may this person do this, here, to this event?
3. claim the intent in the store: the first caller for (kind, event, action) within the dedupe
   window wins; everyone else (double clicks, Slack retries, other replicas) is told who won
4. call Code Stream once; an ambiguous result is reported as such, never retried
5. record the outcome in the actions table (the audit trail)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.access import AccessPolicy, AllowEveryone
from bot.codestream.client import ActionResult, CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event
from bot.errors import AccessDenied, StoreUnavailable
from bot.intents import CODESTREAM_ACTION, ActionRequest, Actor, Outcome, OutcomeStatus, PriorAction
from bot.logs import request_id as request_id_var
from bot.metrics import record_outcome
from bot.store import ActionRecord, Store

log = logging.getLogger(__name__)

OnClaimed = Callable[[Event], Awaitable[None]]
_RESULT_STATUS: dict[str, OutcomeStatus] = {"succeeded": "started", "not_started": "not_started", "unknown": "unknown"}


def claim_key(request: ActionRequest) -> str:
    return f"action:{request.kind}:{request.event_id}:{request.verb}"


@dataclass
class Actions:
    client: CodeStreamClient
    store: Store
    execution_url: Callable[[str], str]  # execution id -> the human UI link
    dedupe_seconds: float = 120.0
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default

    async def perform(self, request: ActionRequest, *, on_claimed: OnClaimed | None = None) -> Outcome:
        """Carry out the request. ``on_claimed(event)`` runs once this caller has won the claim,
        before Code Stream is called (the Slack layer marks the alert "rerun requested")."""
        token = request_id_var.set(request.request_id)
        started = time.perf_counter()
        try:
            outcome = await self._perform(request, on_claimed)
        finally:
            request_id_var.reset(token)
        self._log(outcome, time.perf_counter() - started)
        return outcome

    async def _perform(self, request: ActionRequest, on_claimed: OnClaimed | None) -> Outcome:
        try:
            event = await self.client.get_event(request.kind, request.event_id)
        except CodeStreamError as exc:
            action_id = await self._audit(request, "failed", error=exc) if request.verb != "show" else None
            return Outcome(request, "failed", error=exc, action_id=action_id)
        try:
            await self.access.check(request, event)
        except AccessDenied as denied:
            if request.verb != "show":
                await self._audit(request, "denied", error=denied)
            return Outcome(request, "denied", event=event, error=denied)
        if request.verb == "show":
            return Outcome(request, "shown", event=event, execution_url=self._url_for(event))
        return await self._act(request, event, on_claimed)

    async def _act(self, request: ActionRequest, event: Event, on_claimed: OnClaimed | None) -> Outcome:
        key = claim_key(request)
        try:
            claim = await self.store.claim(
                key,
                request.request_id,
                self.dedupe_seconds,
                {"actor_id": request.actor.user_id, "actor_name": request.actor.name},
            )
        except Exception as exc:
            # Without the claim we cannot promise "exactly once": refuse rather than risk two runs.
            log.exception("store unavailable for claim", extra={"error_class": type(exc).__name__})
            return Outcome(request, "failed", event=event, error=StoreUnavailable())
        if not claim.won:
            return await self._duplicate(request, event, claim.holder, claim.data, claim.claimed_at)

        action_id = await self._audit(request, "pending")
        await self.store.update_claim_data(key, request.request_id, {**claim.data, "action_id": action_id})
        if on_claimed is not None:
            try:
                await on_claimed(event)
            except Exception:
                log.exception("on_claimed hook failed; carrying on with the action")
        try:
            action = CODESTREAM_ACTION[request.verb]
            result = await self.client.act(request.kind, request.event_id, action, before=event)
        except CodeStreamError as exc:
            await self._finish(action_id, "failed", error=exc)
            await self.store.release_claim(key, request.request_id)  # nothing ran: a retry is fine
            return Outcome(request, "failed", event=event, error=exc, action_id=action_id)
        return await self._record_result(request, key, action_id, result)

    async def _record_result(self, request: ActionRequest, key: str, action_id: int, result: ActionResult) -> Outcome:
        status = _RESULT_STATUS[result.state]
        event = result.event
        if event is None:
            # The new execution is unknown (accepted but unreadable, or ambiguous): show the event
            # without the old execution, which would otherwise pass for the new one.
            event = result.before.model_copy(
                update={"execution_link": None, "execution_index": None, "execution_status": None}
            )
        url = self._url_for(result.event) if result.event is not None else None
        await self._finish(
            action_id,
            status,
            error=result.error if status != "started" else None,
            execution_link=result.event.execution_link if result.event is not None else None,
            execution_id=result.event.execution_id if result.event is not None else None,
        )
        if status == "not_started":
            await self.store.release_claim(key, request.request_id)
        return Outcome(
            request, status, event=event, execution_url=url, error=result.error if status != "started" else None,
            action_id=action_id,
        )

    async def _duplicate(
        self, request: ActionRequest, event: Event, holder: str, data: dict[str, object], at: datetime
    ) -> Outcome:
        winner_action_id = data.get("action_id")
        winner = await self.store.get_action(winner_action_id) if isinstance(winner_action_id, int) else None
        prior = PriorAction(
            actor=Actor(str(data.get("actor_id") or "someone"), _str_or_none(data.get("actor_name"))),
            at=at,
            status=winner.status if winner is not None else "pending",
            execution_url=self.execution_url(winner.execution_id) if winner and winner.execution_id else None,
        )
        action_id = await self._audit(request, "duplicate", duplicate_of=winner.id if winner else None)
        return Outcome(request, "duplicate", event=event, prior=prior, action_id=action_id)

    async def _audit(
        self,
        request: ActionRequest,
        status: str,
        *,
        error: Exception | None = None,
        duplicate_of: int | None = None,
    ) -> int:
        """Write the audit row; a ``pending`` row is finished later by ``_finish``."""
        return await self.store.record_action(
            ActionRecord(
                kind=request.kind,
                event_id=request.event_id,
                action=request.verb,
                actor_id=request.actor.user_id,
                actor_name=request.actor.name,
                surface=request.surface,
                channel_id=request.channel_id,
                status=status,
                error=_user_message(error),
                error_class=type(error).__name__ if error else None,
                duplicate_of=duplicate_of,
                request_id=request.request_id,
                finished_at=None if status == "pending" else datetime.now(UTC),
            )
        )

    async def _finish(
        self,
        action_id: int,
        status: str,
        *,
        error: Exception | None = None,
        execution_link: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        try:
            await self._update_row(action_id, status, error, execution_link, execution_id)
        except Exception:
            # Code Stream already acted: the person must still hear about it. The row stays
            # "pending"; this line (with the request id) is the record of what happened.
            log.exception(
                "could not record the outcome in the audit trail",
                extra={"action_id": action_id, "result": status, "execution_id": execution_id},
            )

    async def _update_row(
        self,
        action_id: int,
        status: str,
        error: Exception | None,
        execution_link: str | None,
        execution_id: str | None,
    ) -> None:
        await self.store.update_action(
            action_id,
            status=status,
            error=_user_message(error),
            error_class=type(error).__name__ if error else None,
            execution_link=execution_link,
            execution_id=execution_id,
            finished_at=datetime.now(UTC),
        )

    def _url_for(self, event: Event) -> str | None:
        return self.execution_url(event.execution_id) if event.execution_id else None

    def _log(self, outcome: Outcome, seconds: float) -> None:
        request = outcome.request
        record_outcome(request.verb, request.surface, outcome.status)
        log.info(
            "action %s %s",
            request.verb,
            outcome.status,
            extra={
                "request_id": request.request_id,
                "actor_id": request.actor.user_id,
                "actor_name": request.actor.name,
                "surface": request.surface,
                "channel_id": request.channel_id,
                "kind": request.kind,
                "event_id": request.event_id,
                "verb": request.verb,
                "result": outcome.status,
                "error_class": type(outcome.error).__name__ if outcome.error else None,
                "execution_url": outcome.execution_url,
                "action_id": outcome.action_id,
                "duration_ms": round(seconds * 1000),
            },
        )


def _user_message(error: Exception | None) -> str | None:
    if error is None:
        return None
    message = getattr(error, "user_message", None)
    return str(message) if message else type(error).__name__


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
