"""What happens after a listener has acked: turn an Interaction into an ActionRequest, run
``perform``, and show the Outcome where the person will look for it.

Listeners (``bot.slack.listeners``) read the payload once into an ``Interaction`` and hand it
here: a command record's handler (``bot.slack.commands``), or ``act_on_alert`` for a button
or a thread reply on an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event, EventKind, as_kind
from bot.codestream.user_operations import Decision
from bot.core.access import AccessPolicy, Viewer
from bot.core.approvals.decide import ApprovalDecisions, DecisionRequest
from bot.core.commands import Command, Invocation
from bot.core.control import ControlRequest, ControlVerb, ExecutionControl
from bot.core.digests import RowState
from bot.core.errors import UsageError
from bot.core.followup import FollowupTracker
from bot.core.foreground import Foreground
from bot.core.inflight import InFlight
from bot.core.intents import hand_to_reconciler, retry_write
from bot.core.logs import request_id
from bot.core.perform import Actions, OnClaimed
from bot.core.requests import ActionRequest, Actor, MessageRef, Outcome, new_request_id
from bot.core.routing import Router
from bot.core.verbs import VERBS, Verb, verb_spec
from bot.slack.delivery import Delivery
from bot.slack.identity import SlackIdentity
from bot.slack.interaction import Interaction
from bot.slack.notifier import SlackNotifier
from bot.slack.render.alert import render_alert_after
from bot.slack.render.approval import (
    approval_title,
    render_decision_modal,
    render_decision_outcome,
)
from bot.slack.render.control import render_control_outcome
from bot.slack.render.digest import row_after
from bot.slack.render.messages import (
    SOMETHING_WENT_WRONG,
    SlackMessage,
    render_alert_in_progress,
    render_error,
    render_outcome,
    render_usage_error,
)
from bot.slack.threads import AlertThreads, Deliveries
from bot.slack.users import UserDirectory
from bot.store import FollowupRecord, Store

log = logging.getLogger(__name__)

# Outcomes the whole channel should see; the rest only concern the person who asked.
PUBLIC_STATUSES: Final = frozenset({"started", "unknown"})
# Interactions worked on at once, after their ack (100 keeps 100 concurrent reruns parallel).
MAX_CONCURRENT_WORK: Final = 100

#: The bot's health as the App Home shows it: part → state ("ok", or what is wrong).
Health = Callable[[], Awaitable[dict[str, str]]]

# A command's handler: answers itself (None) or returns the message only the caller sees.
Handler = Callable[["Surfaces", Interaction, Invocation], Awaitable[SlackMessage | None]]


def now() -> datetime:
    return datetime.now(UTC)


class Surfaces:
    """Everything the listeners hand over to; built by the app with its collaborators."""

    def __init__(
        self,
        *,
        actions: Actions,
        store: Store,
        client: CodeStreamClient,
        access: AccessPolicy,
        delivery: Delivery,
        users: UserDirectory,
        execution_link: Callable[[str | None], str | None],
        inflight: InFlight | None = None,
        identity: SlackIdentity | None = None,
        followups: FollowupTracker | None = None,
        notifier: SlackNotifier | None = None,
        routing: Router | None = None,
        controls: ExecutionControl | None = None,
        decisions: ApprovalDecisions | None = None,
        foreground: Foreground | None = None,
    ) -> None:
        self.actions = actions
        self.store = store
        self.client = client
        self.access = access
        self.delivery = delivery
        self.users = users
        self.execution_link = execution_link
        self.inflight = inflight or InFlight()
        self.followups = followups  # follows what a started action created
        # Draws on alerts (and on digests' rows): the same one the follow-through uses.
        self.notifier = notifier or SlackNotifier(delivery, execution_link=execution_link)
        self.routing = routing or Router()  # BOT_CONFIG's routes and the fallback (read-only here)
        self.health: Health | None = None  # set by the app once readiness and the watcher exist
        self.controls = controls  # cancel, pause and resume of executions
        self.decisions = decisions  # approving and rejecting Code Stream approvals
        self.deliveries = Deliveries(store)
        self.threads = AlertThreads(store, delivery, identity)
        # "requested by" updates in flight, per alert message and event (a digest has many rows)
        self._marking: dict[tuple[str, str, str], asyncio.Task[bool]] = {}
        self._detached: set[asyncio.Task[object]] = set()  # work going on after its listener returned
        # Work after the ack is bounded: a burst queues here instead of piling up in the event
        # loop and the HTTP pools, so acks stay fast (Slack's deadline is 3 s).
        self._working = asyncio.Semaphore(MAX_CONCURRENT_WORK)
        # Requests still waiting for their ack go first (see bot.core.foreground).
        self.foreground = foreground or Foreground()

    # --- entry points ---------------------------------------------------------------------

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        """For handlers outside this class: the same bookkeeping as every interaction."""
        return self._interaction()

    @contextlib.asynccontextmanager
    async def _interaction(self) -> AsyncIterator[None]:
        """One Slack interaction after its ack: a request id in every log line from here through
        perform() to the Code Stream call, counted as in flight until answered (graceful
        shutdown waits for it), and one of at most MAX_CONCURRENT_WORK at once."""
        token = request_id.set(new_request_id())
        try:
            async with self.inflight.track():
                await self.foreground.wait_turn()
                async with self._working:
                    yield
        finally:
            request_id.reset(token)

    def after_ack(
        self,
        headers: Mapping[str, Sequence[str] | str],
        interaction: Interaction,
        work: Callable[[], Awaitable[object]],
    ) -> None:
        """Right after a listener's ack: the replay check, then ``work``, in a task of their own
        (see ``detach``). Only the request's headers are kept, not its payload."""
        kept = {name: value if isinstance(value, str) else list(value) for name, value in headers.items()}

        async def accepted_then_work() -> None:
            if await self.accepted_once(kept):
                await work()

        self.detach(accepted_then_work(), interaction)

    def detach(self, work: Coroutine[Any, Any, object], interaction: Interaction) -> None:
        """Go on with ``work`` in a task of its own, so the listener can return at once: Bolt's
        request (the raw and parsed payload, its context) is freed instead of staying in memory
        while the work waits its turn behind a burst. Counted in flight from now; an unexpected
        error is logged and the person told, as Bolt's error handler does for listeners."""
        task = asyncio.get_running_loop().create_task(work)
        self.inflight.enter(task)
        self._detached.add(task)

        def done(finished: asyncio.Task[object]) -> None:
            self._detached.discard(finished)
            try:
                error = None if finished.cancelled() else finished.exception()
                if error is not None:
                    log.error(
                        "unhandled error in a listener", exc_info=error, extra={"error_class": type(error).__name__}
                    )
                    if interaction.channel_id:  # the apology is in flight before this task leaves
                        apology = self.delivery.ephemeral(
                            interaction.channel_id, interaction.user_id, SOMETHING_WENT_WRONG
                        )
                        self.detach(apology, replace(interaction, channel_id=None))
            finally:
                self.inflight.leave(finished)

        task.add_done_callback(done)

    async def run(self, command: Command[Handler], interaction: Interaction, invocation: Invocation) -> None:
        """A parsed command (slash or @mention), through its registry record's handler."""
        async with self._interaction():
            message = await command.handler(self, interaction, invocation)
            if message is not None:
                await self.answer(interaction, message)

    async def answer(self, interaction: Interaction, message: SlackMessage) -> None:
        """Only the person who asked sees it."""
        await self.delivery.ephemeral(
            interaction.channel_id,
            interaction.user_id,
            message,
            thread_ts=interaction.thread_ts,
            respond=interaction.respond,
        )

    async def accepted_once(self, headers: Mapping[str, Sequence[str] | str], *, behind: bool = True) -> bool:
        """Right after the ack: the replay check. From here on the work yields to acks
        (``behind``), unless it has a deadline of its own (a modal's 3 s trigger)."""
        if behind:
            self.foreground.behind()
        return await self.deliveries.accepted_once(headers)

    async def first_delivery(self, event_id: object) -> bool:
        return await self.deliveries.first_delivery(event_id)

    async def alert_for_thread(self, channel: str, thread_ts: str) -> tuple[EventKind, str, MessageRef] | None:
        return await self.threads.alert_for_thread(channel, thread_ts)

    async def actor(self, interaction: Interaction) -> tuple[Actor, str | None]:
        """Who asks (their name from users.info) and their home workspace."""
        info = await self.users.lookup(interaction.user_id)
        name = (info.name if info is not None else None) or interaction.user_name
        return Actor(interaction.user_id, name), (info.team_id if info is not None else None) or interaction.team_id

    async def viewer(self, interaction: Interaction) -> Viewer:
        """Who reads, where: the home workspace from users.info, else the payload's hint."""
        info = await self.users.lookup(interaction.user_id)
        team = (info.team_id if info is not None else None) or interaction.team_id
        return Viewer(interaction.user_id, interaction.channel_id, team)

    # --- verbs ----------------------------------------------------------------------------

    async def perform_verb(self, interaction: Interaction, invocation: Invocation) -> None:
        """``/codestream rerun <id>`` (or an @mention): the verb on the event it names."""
        spec = verb_spec(invocation.command)
        assert spec is not None and invocation.kind is not None and invocation.event_id is not None
        verb = spec.name
        alert = await self._known_alert(verb, invocation.kind, invocation.event_id)
        request = await self._request(verb, invocation.kind, invocation.event_id, interaction, alert)
        outcome = await self.actions.perform(
            request, on_claimed=self._mark_in_progress(request, alert) if alert else None
        )
        message = render_outcome(outcome, now=now())
        channel, thread_ts = interaction.channel_id, interaction.thread_ts
        if outcome.status in PUBLIC_STATUSES:
            ts = await self.delivery.public(channel, message, thread_ts=thread_ts, respond=interaction.respond)
            await self._after_action(outcome, summary=MessageRef(channel, ts, ts) if ts and channel else None)
            return
        await self.answer(interaction, message)
        if alert is not None and outcome.action_id is not None and outcome.status not in ("denied", "duplicate"):
            await self._update_alert(alert, outcome)

    async def act_on_alert(
        self,
        verb: Verb,
        kind: EventKind,
        event_id: str,
        interaction: Interaction,
        *,
        expected_index: int | None = None,
        access_channel: str | Literal["alert"] | None = "alert",
    ) -> Outcome:
        """A button on an alert, or a reply in its thread (``interaction.alert`` is the alert).
        ``expected_index``: the run the clicked row lists (a digest), acted on only while latest;
        ``access_channel``: where access is checked (the alert's channel, or None: from Home)."""
        alert = interaction.alert
        assert alert is not None, "acting on an alert needs the alert"
        mutates = VERBS[verb].mutates
        async with self._interaction():
            request = await self._request(verb, kind, event_id, interaction, alert if mutates else None)
            request = replace(request, expected_index=expected_index)
            if access_channel != "alert":
                request = replace(request, channel_id=access_channel)
            on_claimed = self._mark_in_progress(request, alert) if mutates else None
            outcome = await self.actions.perform(request, on_claimed=on_claimed)
            message = render_outcome(outcome, now=now())
            if outcome.status in ("denied", "duplicate"):
                await self.delivery.ephemeral(alert.channel, interaction.user_id, message, thread_ts=alert.thread_ts)
                return outcome
            ts = await self.delivery.public(alert.channel, message, thread_ts=alert.thread_ts)
            if mutates and outcome.action_id is not None:
                await self._after_action(outcome, summary=MessageRef(alert.channel, ts, ts) if ts else None)
            return outcome

    async def act_from_home(
        self,
        verb: Verb,
        kind: EventKind,
        event_id: str,
        interaction: Interaction,
        *,
        expected_index: int | None = None,
    ) -> Outcome:
        """A button on the App Home: the same perform(), outside any channel for access (a rule
        limited to channels does not allow it: the person did not act in that channel). An event
        with an alert is otherwise acted on as from the alert (marked, summary in its thread,
        followed to its end); one without has its outcome shown on the Home tab."""
        alert = await self._known_alert(verb, kind, event_id)
        if alert is not None:
            return await self.act_on_alert(
                verb, kind, event_id, interaction.on(alert), expected_index=expected_index, access_channel=None
            )
        async with self._interaction():
            request = await self._request(verb, kind, event_id, interaction, None)
            request = replace(request, channel_id=None, expected_index=expected_index)
            outcome = await self.actions.perform(request)
            if outcome.status == "unknown":
                await self.actions.follow_unknown(outcome, None)  # the reconciler settles it
            return outcome

    async def act_on_rows(
        self, interaction: Interaction, rows: Sequence[tuple[EventKind, str, int | None]], *, at_once: int = 4
    ) -> list[Outcome]:
        """ "Rerun all" on a digest (``interaction.alert``): each row through ``perform`` as if its
        own menu was used, ``at_once`` at a time; the digest is each one's summary (its row shows
        the run's progress), so nothing is posted per row. Called inside ``working()``."""
        alert = interaction.alert
        assert alert is not None, "acting on rows needs their digest"
        gate = asyncio.Semaphore(at_once)

        async def one(kind: EventKind, event_id: str, listed: int | None) -> Outcome:
            async with gate:
                request = replace(
                    await self._request("rerun", kind, event_id, interaction, alert), expected_index=listed
                )
                outcome = await self.actions.perform(request, on_claimed=self._mark_in_progress(request, alert))
                if outcome.status not in ("denied", "duplicate"):
                    await self._after_action(outcome, summary=alert)
                return outcome

        return list(await asyncio.gather(*(one(*row) for row in rows)))

    # --- execution control ------------------------------------------------------------------

    async def control_execution(
        self, verb: ControlVerb, execution_id: str, interaction: Interaction, *, kind: EventKind | None = None
    ) -> None:
        """Cancel, pause or resume an execution: a summary's button (``interaction.alert`` is the
        summary) or ``/codestream cancel|pause|resume-execution``. Done (or not known yet):
        everyone sees who did it, in the summary's thread or where the command was typed, and
        a followed summary updates in place; anything else only the person who asked sees."""
        assert self.controls is not None, "execution control is not wired"
        followed = await self._followed(execution_id)
        if kind is None and followed is not None:
            kind = as_kind(followed.kind)
        info = await self.users.lookup(interaction.user_id)
        request = ControlRequest(
            verb=verb,
            execution_id=execution_id,
            actor=Actor(interaction.user_id, (info.name if info is not None else None) or interaction.user_name),
            surface=interaction.surface,
            channel_id=interaction.channel_id,
            request_id=request_id.get() or new_request_id(),
            team_id=(info.team_id if info is not None else None) or interaction.team_id,
            kind=kind,
        )
        outcome = await self.controls.perform(request)
        message = render_control_outcome(outcome, now=now())
        if outcome.status not in ("done", "unknown"):
            await self.answer(interaction, message)
            return
        channel, thread_ts = interaction.channel_id, interaction.thread_ts
        ts = await self.delivery.public(channel, message, thread_ts=thread_ts, respond=interaction.respond)
        try:
            if outcome.status == "unknown":
                answer = MessageRef(channel, ts, ts) if channel and ts else None
                await self.controls.follow_unknown(outcome, answer)
            elif self.followups is not None:
                await self.followups.acted(execution_id, verb=verb, actor_id=request.actor.user_id, at=outcome.at)
        except Exception:
            log.exception("after an execution action: follow-up failed", extra={"action_id": outcome.action_id})

    async def _followed(self, execution_id: str) -> FollowupRecord | None:
        try:
            return await self.store.open_followup_for_execution(execution_id)
        except Exception:
            log.exception("followup lookup failed")
            return None

    # --- approvals ----------------------------------------------------------------------------

    async def _decision_request(
        self, operation_id: str, decision: Decision, message: str, interaction: Interaction, channel: str | None
    ) -> DecisionRequest:
        info = await self.users.lookup(interaction.user_id)
        return DecisionRequest(
            operation_id=operation_id,
            decision=decision,
            message=message,
            actor=Actor(interaction.user_id, (info.name if info is not None else None) or interaction.user_name),
            surface=interaction.surface,
            email=info.email if info is not None else None,
            channel_id=channel,
            team_id=(info.team_id if info is not None else None) or interaction.team_id,
            request_id=request_id.get() or new_request_id(),
        )

    async def open_decision(self, operation_id: str, decision: Decision, interaction: Interaction) -> None:
        """Approve / Reject on a request: someone who may decide gets the modal for a response
        message; anyone else a specific answer at once (before typing anything)."""
        assert self.decisions is not None, "approvals are not wired"
        request = await self._decision_request(operation_id, decision, "", interaction, interaction.channel_id)
        try:
            operation = await self.client.get_user_operation(operation_id)
        except CodeStreamError as exc:
            await self.answer(interaction, render_error(exc))
            return
        refusal = await self.decisions.refusal(request, operation)
        if refusal is not None:
            outcome = await self.decisions.refused(request, refusal, operation)
            await self.answer(interaction, render_decision_outcome(outcome))
            return
        if not operation.pending:
            outcome = await self.decisions.decide(request)  # says it ended, and redraws it; sends nothing
            await self.answer(interaction, render_decision_outcome(outcome))
            return
        view = render_decision_modal(operation_id, decision, title=approval_title(operation))
        if interaction.trigger_id is None or not await self.delivery.open_view(interaction.trigger_id, view):
            await self.answer(interaction, render_usage_error(UsageError("Slack did not open the form; try again.")))

    async def submit_decision(
        self, operation_id: str, decision: Decision, message: str, interaction: Interaction
    ) -> None:
        """The modal's submission: decide, and tell the person if it did not go through (a done
        decision shows in the request message itself)."""
        assert self.decisions is not None, "approvals are not wired"
        record = await self.store.get_approval(operation_id)
        channel = record.channel_id if record is not None else None
        request = await self._decision_request(operation_id, decision, message, interaction, channel)
        outcome = await self.decisions.decide(request)
        if channel is not None and outcome.status != "done":
            await self.delivery.ephemeral(channel, interaction.user_id, render_decision_outcome(outcome))
        if outcome.status == "unknown" and outcome.action_id is not None:
            await hand_to_reconciler(
                self.store, self.decisions.owner, outcome.action_id, None, self.decisions.wake_reconciler
            )

    # --- shared ---------------------------------------------------------------------------

    async def _request(
        self, verb: Verb, kind: EventKind, event_id: str, interaction: Interaction, alert: MessageRef | None
    ) -> ActionRequest:
        info = await self.users.lookup(interaction.user_id)
        name = (info.name if info is not None else None) or interaction.user_name
        # The person's home workspace: users.info is authoritative (a Slack Connect guest's is
        # their own organisation's); the payload's hint only when Slack could not be asked.
        team = (info.team_id if info is not None else None) or interaction.team_id
        return ActionRequest(
            verb=verb,
            kind=kind,
            event_id=event_id,
            actor=Actor(interaction.user_id, name),
            surface=interaction.surface,
            channel_id=interaction.channel_id,
            request_id=request_id.get() or new_request_id(),
            alert=alert,
            team_id=team,
        )

    async def _known_alert(self, verb: Verb, kind: EventKind, event_id: str) -> MessageRef | None:
        if not VERBS[verb].mutates:
            return None
        try:
            record = await self.store.latest_alert_for_event(kind, event_id)
        except Exception:
            log.exception("alert lookup failed")
            return None
        if record is None:
            return None
        return MessageRef(record.channel_id, record.ts, record.thread_ts or record.ts)

    def _mark_in_progress(self, request: ActionRequest, alert: MessageRef | None) -> OnClaimed:
        """The alert shows "Rerun requested by @alice" once this request won the claim. The update
        runs beside the Code Stream call (a slow Slack must not delay the rerun); the final update
        of the alert waits for it, so the two never arrive out of order."""

        async def mark(event: Event) -> None:
            if alert is None:
                return
            message = render_alert_in_progress(
                event,
                verb=request.verb,
                actor_id=request.actor.user_id,
                execution_url=self.execution_link(event.execution_id),
                now=now(),
            )
            row = RowState.requested(request.verb, request.actor.user_id)
            update = self.notifier.update_alert(alert, request.kind, request.event_id, message, row)
            self._marking[(alert.channel, alert.ts, request.event_id)] = asyncio.create_task(update)

        return mark

    async def _update_alert(self, alert: MessageRef, outcome: Outcome) -> None:
        marking = self._marking.pop((alert.channel, alert.ts, outcome.request.event_id), None)
        if marking is not None:
            await marking
        message = render_alert_after(outcome, now=now())
        if message is not None:
            row = row_after(outcome)
            await self.notifier.update_alert(alert, outcome.request.kind, outcome.request.event_id, message, row)

    async def _after_action(self, outcome: Outcome, *, summary: MessageRef | None) -> None:
        """After the answer is shown. Code Stream may have acted: nothing here may end in "please
        try again", so failures are logged and left to the reconciler and follow-through. The
        hand-over to those happens whatever becomes of the alert's update (which is retried)."""
        alert = outcome.request.alert
        if alert is not None:
            try:
                await retry_write(lambda: self._update_alert(alert, outcome))
            except Exception:
                log.exception(
                    "after the action: the alert could not be updated", extra={"action_id": outcome.action_id}
                )
        try:
            if outcome.status == "unknown":
                await self.actions.follow_unknown(outcome, summary)
                return
            tracker = self.followups
            if tracker is not None and outcome.status == "started" and summary is not None:
                await tracker.track(outcome, channel=summary.channel, summary_ts=summary.ts, alert=alert)
        except Exception:
            log.exception("after the action: the hand-over failed", extra={"action_id": outcome.action_id})
