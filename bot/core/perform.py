"""``EventPerformer.perform(request) -> Outcome``: rerun, resume or show an event — the adapter of
events (git, Gerrit, Docker registry) to the one intent lifecycle (``bot.core.lifecycle``). No
Slack in here.

1. access, before anything is read: someone no rule could allow here learns nothing
2. read the event (unknown ids fail here, before anything is claimed), then access on its
   project and pipeline; ``show`` ends here
3. the runner claims ``intent:<kind>:<event>`` with a ``pending`` row (one intent per event at
   a time, whatever the verb), tells the caller's ``Progress`` (Slack marks the alert), and
   makes ONE ``POST …/<kind>-events/{id}?action=Rerun|Resume``. The run the person saw must
   still be the event's latest (a digest row's): else nothing is sent (``Superseded``).
4. a run that started keeps the claim for the dedupe window; an ambiguous answer is unknown
   until the reconciler reads the event back (``EventReadBack``)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event
from bot.core.access import AccessPolicy, AllowEveryone
from bot.core.errors import AccessDenied, BotError, Superseded
from bot.core.intents import intent_key, log_outcome, user_message, without_execution
from bot.core.lifecycle import Closing, Intent, Lifecycle, Progress, Run, Sent
from bot.core.logs import request_id as request_id_var
from bot.core.requests import ActionRequest, Actor, MessageRef, Outcome, OutcomeStatus, PriorAction
from bot.core.verbs import VERBS, event_action, stored_verb
from bot.store import ActionRecord, Claim

log = logging.getLogger(__name__)

#: An event's Progress port: told the event once the claim is won.
EventProgress = Progress[Event]


@dataclass
class EventTarget:
    """The adapter: what is specific to acting on an event."""

    client: CodeStreamClient
    lifecycle: Lifecycle
    dedupe_seconds: float

    reread = False  # the event read before the claim is the one checked (``stale``)

    def intent(self, request: ActionRequest) -> Intent:
        data = {"actor_id": request.actor.user_id, "actor_name": request.actor.name, "verb": request.verb}
        return Intent(intent_key(request.kind, request.event_id), request.request_id, data)

    def row(
        self,
        request: ActionRequest,
        status: str,
        target: Event | None,
        error: Exception | None,
        *,
        duplicate_of: int | None = None,
    ) -> ActionRecord:
        """The audit row; a ``pending`` row carries what finishing it needs (the event as it
        was, the alert, the deadline)."""
        now = self.lifecycle.store.now()
        pending = status == "pending"
        before = target if pending else None
        alert = request.alert if pending else None
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
            owner=self.lifecycle.owner if pending else None,
            before_execution_index=before.execution_index if before is not None else None,
            before_execution_link=before.execution_link if before is not None else None,
            settle_by=now + timedelta(seconds=self.lifecycle.open_seconds) if pending else None,
            alert_channel=alert.channel if alert is not None else None,
            alert_ts=alert.ts if alert is not None else None,
            alert_thread_ts=alert.thread_ts if alert is not None else None,
            project=target.project if target is not None else None,
            pipeline=target.pipeline if target is not None else None,
        )

    async def read(self, request: ActionRequest) -> Event:
        return await self.client.get_event(request.kind, request.event_id)

    def stale(self, request: ActionRequest, target: Event) -> Closing | None:
        # The run the person saw is not the latest any more (rerun from vRA, or by someone whose
        # claim has ended): nothing is sent. Checked under the claim, after "already in hand",
        # which says more while the other run is fresh.
        if request.expected_index is not None and target.execution_index != request.expected_index:
            return Closing("failed", Superseded())
        return None

    async def send(self, request: ActionRequest, target: Event) -> Sent[Event]:
        result = await self.client.act(request.kind, request.event_id, event_action(VERBS[request.verb]), before=target)
        return Sent(result.state, result.before, result.event, result.error)

    async def refused(self, request: ActionRequest, error: CodeStreamError) -> tuple[Event, Closing] | None:
        return None  # a 4xx on an event is what it says

    def closing(self, request: ActionRequest, sent: Sent[Event]) -> Closing:
        if sent.state != "succeeded":
            return Closing("not_started", sent.error)
        after = sent.after
        return Closing(
            "started",
            settle_for=self.dedupe_seconds,  # a started run keeps the intent for the dedupe window
            execution_link=after.execution_link if after is not None else None,
            execution_id=after.execution_id if after is not None else None,
        )


@dataclass
class EventPerformer:
    """Rerun, resume and show events: access, the read, and the runner; outcomes as Slack shows
    them."""

    target: EventTarget
    execution_url: Callable[[str], str]  # execution id -> the human UI link
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default

    @property
    def lifecycle(self) -> Lifecycle:
        return self.target.lifecycle

    async def perform(self, request: ActionRequest, progress: EventProgress | None = None) -> Outcome:
        """Carry out the request; ``progress`` is told once this caller has won the claim,
        before Code Stream is called."""
        token = request_id_var.set(request.request_id)
        started = time.perf_counter()
        try:
            outcome = await self._perform(request, progress)
        finally:
            request_id_var.reset(token)
        log_outcome(outcome, time.perf_counter() - started)
        return outcome

    async def follow_unknown(self, outcome: Outcome, summary: MessageRef | None) -> None:
        """The Slack layer has shown an unknown outcome (``summary``: where, to update in place):
        from now on the reconciler reads the event back and settles it."""
        if outcome.status == "unknown" and outcome.action_id is not None:
            await self.lifecycle.hand_over(outcome.action_id, summary)

    async def _perform(self, request: ActionRequest, progress: EventProgress | None) -> Outcome:
        mutates = VERBS[request.verb].mutates
        try:
            await self.access.precheck(request)
        except AccessDenied as denied:
            return await self._ended(request, "denied", denied, None, audit=mutates)
        try:
            event = await self.target.read(request)
        except CodeStreamError as exc:
            return await self._ended(request, "failed", exc, None, audit=mutates)
        try:
            await self.access.check(request, event)
        except AccessDenied as denied:
            # A denial names no event facts: the person may not be allowed to see them either.
            return await self._ended(request, "denied", denied, event, audit=mutates, show=False)
        if not mutates:
            return Outcome(request, "shown", event=event, execution_url=self._url_for(event))
        run = await self.lifecycle.run(self.target, request, event, progress)
        return await self._outcome(request, event, run)

    async def _outcome(self, request: ActionRequest, event: Event, run: Run[Event]) -> Outcome:
        if run.state == "lost":
            assert run.claim is not None
            return await self._duplicate(request, event, run.claim)
        error = run.error if isinstance(run.error, CodeStreamError | BotError) else None
        action_id = run.action_id
        if run.state == "unknown":  # the old execution must not pass for the new one
            shown = without_execution(run.target or event)
            return Outcome(request, "unknown", event=shown, error=error, action_id=action_id, settle_by=run.settle_by)
        if run.state == "succeeded":
            # Accepted but unreadable: the event without its old execution, which would
            # otherwise pass for the new one.
            after = run.target if run.answered else None
            url = self._url_for(after) if after is not None else None
            shown = after if after is not None else without_execution(event)
            return Outcome(request, "started", event=shown, execution_url=url, action_id=action_id)
        if run.state == "not_started":
            shown = run.target if run.answered and run.target is not None else without_execution(event)
            return Outcome(request, "not_started", event=shown, error=error, action_id=action_id)
        return Outcome(request, "failed", event=run.target or event, error=error, action_id=action_id)

    async def _duplicate(self, request: ActionRequest, event: Event, claim: Claim) -> Outcome:
        data = claim.data
        winner_id = data.get("action_id")
        winner = await self.lifecycle.quietly_read_action(winner_id) if isinstance(winner_id, int) else None
        verb = data.get("verb")
        prior = PriorAction(
            actor=Actor(str(data.get("actor_id") or "someone"), _str_or_none(data.get("actor_name"))),
            at=claim.claimed_at,
            status=winner.status if winner is not None else "pending",
            execution_url=self.execution_url(winner.execution_id) if winner and winner.execution_id else None,
            verb=stored_verb(verb) if isinstance(verb, str) else request.verb,
        )
        row = self.target.row(request, "duplicate", event, None, duplicate_of=winner.id if winner else None)
        action_id = await self.lifecycle.audit(row)
        return Outcome(request, "duplicate", event=event, prior=prior, action_id=action_id)

    async def _ended(
        self,
        request: ActionRequest,
        status: OutcomeStatus,
        error: CodeStreamError | AccessDenied,
        event: Event | None,
        *,
        audit: bool,
        show: bool = True,
    ) -> Outcome:
        """A request that ends before any claim: audited when it asked for a change."""
        action_id = await self.lifecycle.audit(self.target.row(request, status, event, error)) if audit else None
        if status == "denied":
            action_id = None
        return Outcome(request, status, event=event if show else None, error=error, action_id=action_id)

    def _url_for(self, event: Event) -> str | None:
        return self.execution_url(event.execution_id) if event.execution_id else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["EventPerformer", "EventProgress", "EventTarget"]
