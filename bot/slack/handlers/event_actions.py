"""Rerun and Resume on an event: a button on its alert, a reply in the alert's thread, the App
Home, ``/codestream rerun <id>`` (or an @mention), and the rows of a storm digest. Each is one
``EventPerformer.perform``; the outcome is shown where the person will look, the alert shows it too, a
started run is followed and an unknown one handed to the reconciler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Literal

from bot.codestream.models import EventKind
from bot.core.commands import Invocation
from bot.core.digests import DigestBoard
from bot.core.errors import StoreUnavailable
from bot.core.followup import FollowupTracker
from bot.core.intents import retry_write
from bot.core.perform import EventPerformer
from bot.core.requests import ActionRequest, MessageRef, Outcome
from bot.core.verbs import VERBS, Verb, verb_spec
from bot.slack.alerts import AlertFinder, AlertMarks
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.digest import render_digest_thread_answer
from bot.slack.render.messages import render_error, render_outcome

log = logging.getLogger(__name__)

# Outcomes the whole channel should see; the rest only concern the person who asked.
PUBLIC_STATUSES: Final = frozenset({"started", "unknown"})
# Rows of a digest's "Rerun all" performed at once.
ROWS_AT_ONCE: Final = 4


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EventActions:
    """Rerun and Resume on an event, from wherever they are asked."""

    context: InteractionContext
    actions: EventPerformer
    delivery: Delivery
    alerts: AlertFinder
    marks: AlertMarks
    digests: DigestBoard  # tells a digest's thread from an alert's
    followups: FollowupTracker  # follows what a started action created

    async def on_alert(
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
        request = await self._request(verb, kind, event_id, interaction, alert if mutates else None)
        request = replace(request, expected_index=expected_index)
        if access_channel != "alert":
            request = replace(request, channel_id=access_channel)
        progress = self.marks.progress(request, alert) if mutates else None
        outcome = await self.actions.perform(request, progress)
        message = render_outcome(outcome, now=_now())
        if outcome.status in ("denied", "duplicate"):
            await self.delivery.ephemeral(alert.channel, interaction.user_id, message, thread_ts=alert.thread_ts)
            return outcome
        ts = await self.delivery.public(alert.channel, message, thread_ts=alert.thread_ts)
        if mutates and outcome.action_id is not None:
            await self._after_action(outcome, summary=MessageRef(alert.channel, ts, ts) if ts else None)
        return outcome

    async def on_thread_reply(self, verb: Verb, interaction: Interaction) -> None:
        """``rerun`` (or ``resume``, ``status``) replied in a thread: on the alert it belongs to;
        a digest's thread names no one failure, so that is said instead."""
        channel, thread_ts = interaction.channel_id or "", interaction.thread_ts or ""
        target = await self.alerts.for_thread(channel, thread_ts)
        if target is None:
            return  # a thread that is not one of our alerts
        kind, event_id, alert = target
        interaction = interaction.on(alert)
        try:
            in_digest = await self.digests.at(channel, thread_ts) is not None
        except Exception:  # cannot tell whether this thread names one failure: act on none
            log.exception("digest look-up failed; the reply is not acted on")
            await self.context.answer(interaction, render_error(StoreUnavailable()))
            return
        if in_digest:
            await self.context.answer(interaction, render_digest_thread_answer())
            return
        await self.on_alert(verb, kind, event_id, interaction)

    async def from_home(
        self, verb: Verb, kind: EventKind, event_id: str, interaction: Interaction, *, expected_index: int | None
    ) -> Outcome:
        """A button on the App Home: the same perform(), outside any channel for access (a rule
        limited to channels does not allow it: the person did not act in that channel). An event
        with an alert is otherwise acted on as from the alert (marked, summary in its thread,
        followed to its end); one without has its outcome shown on the Home tab."""
        alert = await self._known_alert(verb, kind, event_id)
        if alert is not None:
            return await self.on_alert(
                verb, kind, event_id, interaction.on(alert), expected_index=expected_index, access_channel=None
            )
        request = await self._request(verb, kind, event_id, interaction, None)
        request = replace(request, channel_id=None, expected_index=expected_index)
        outcome = await self.actions.perform(request)
        if outcome.status == "unknown":
            await self.actions.follow_unknown(outcome, None)  # the reconciler settles it
        return outcome

    async def from_command(self, interaction: Interaction, invocation: Invocation) -> None:
        """``/codestream rerun <id>`` (or an @mention): the verb on the event it names."""
        spec = verb_spec(invocation.command)
        assert spec is not None and invocation.kind is not None and invocation.event_id is not None
        verb = spec.name
        alert = await self._known_alert(verb, invocation.kind, invocation.event_id)
        request = await self._request(verb, invocation.kind, invocation.event_id, interaction, alert)
        progress = self.marks.progress(request, alert) if alert else None
        outcome = await self.actions.perform(request, progress)
        message = render_outcome(outcome, now=_now())
        channel, thread_ts = interaction.channel_id, interaction.thread_ts
        if outcome.status in PUBLIC_STATUSES:
            ts = await self.delivery.public(channel, message, thread_ts=thread_ts, respond=interaction.respond)
            await self._after_action(outcome, summary=MessageRef(channel, ts, ts) if ts and channel else None)
            return
        await self.context.answer(interaction, message)
        if alert is not None and outcome.action_id is not None and outcome.status not in ("denied", "duplicate"):
            await self.marks.show_outcome(alert, outcome)

    async def on_rows(
        self, interaction: Interaction, rows: Sequence[tuple[EventKind, str, int | None]]
    ) -> list[Outcome]:
        """ "Rerun all" on a digest (``interaction.alert``): each row through ``perform`` as if its
        own menu was used, ``ROWS_AT_ONCE`` at a time; the digest is each one's summary (its row
        shows the run's progress), so nothing is posted per row."""
        alert = interaction.alert
        assert alert is not None, "acting on rows needs their digest"
        gate = asyncio.Semaphore(ROWS_AT_ONCE)

        async def one(kind: EventKind, event_id: str, listed: int | None) -> Outcome:
            async with gate:
                request = await self._request("rerun", kind, event_id, interaction, alert)
                request = replace(request, expected_index=listed)
                outcome = await self.actions.perform(request, self.marks.progress(request, alert))
                if outcome.status not in ("denied", "duplicate"):
                    await self._after_action(outcome, summary=alert)
                return outcome

        return list(await asyncio.gather(*(one(*row) for row in rows)))

    async def on_missed_pushes(self, interaction: Interaction, event_ids: Sequence[str]) -> list[Outcome]:
        """Rerun the pushes a broken git webhook missed (``interaction.alert`` is its alert), one
        after the other in the order given (oldest first: the newest commit starts last): each
        through ``perform`` (access per event, one intent per event, audit), its summary in the
        alert's thread and followed to its end. The alert itself is not marked: it stands for
        all of them."""
        alert = interaction.alert
        assert alert is not None, "rerunning missed pushes needs their alert"
        outcomes = []
        for event_id in event_ids:
            request = await self._request("rerun", "git", event_id, interaction, None)
            outcome = await self.actions.perform(request)
            if outcome.status in PUBLIC_STATUSES:
                said = render_outcome(outcome, now=_now())
                ts = await self.delivery.public(alert.channel, said, thread_ts=alert.ts)
                await self._after_action(outcome, summary=MessageRef(alert.channel, ts, alert.ts) if ts else None)
            outcomes.append(outcome)
        return outcomes

    # --- shared ---------------------------------------------------------------------------------

    async def _request(
        self, verb: Verb, kind: EventKind, event_id: str, interaction: Interaction, alert: MessageRef | None
    ) -> ActionRequest:
        who = await self.context.who(interaction)
        channel = interaction.channel_id
        return ActionRequest(
            verb=verb, kind=kind, event_id=event_id, channel_id=channel, alert=alert, **who.asking(interaction)
        )

    async def _known_alert(self, verb: Verb, kind: EventKind, event_id: str) -> MessageRef | None:
        if not VERBS[verb].mutates:
            return None
        return await self.alerts.for_event(kind, event_id)

    async def _after_action(self, outcome: Outcome, *, summary: MessageRef | None) -> None:
        """After the answer is shown. Code Stream may have acted: nothing here may end in "please
        try again", so failures are logged and left to the reconciler and follow-through. The
        hand-over to those happens whatever becomes of the alert's update (which is retried)."""
        alert = outcome.request.alert
        if alert is not None:
            try:
                await retry_write(lambda: self.marks.show_outcome(alert, outcome))
            except Exception:
                log.exception(
                    "after the action: the alert could not be updated", extra={"action_id": outcome.action_id}
                )
        try:
            if outcome.status == "unknown":
                await self.actions.follow_unknown(outcome, summary)
                return
            if outcome.status == "started" and summary is not None:
                await self.followups.track(outcome, channel=summary.channel, summary_ts=summary.ts, alert=alert)
        except Exception:
            log.exception("after the action: the hand-over failed", extra={"action_id": outcome.action_id})
