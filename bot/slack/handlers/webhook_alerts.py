"""A broken git webhook's alert: **Check again** reads the webhook and the pushes through it and,
once it works, redraws the alert with since when and **Rerun the newest push** / **Rerun all N
missed pushes**; those rerun each missed push through ``perform()`` (one POST per event however
many clicks, replicas or retries), with each run's summary and a tally in the alert's thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event, EventKind
from bot.core.access import AccessPolicy, Scope
from bot.core.errors import StoreUnavailable, UsageError
from bot.core.webhook_recovery import Assessment, WebhookRecovery
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.handlers.event_actions import EventActions
from bot.slack.interaction import Interaction
from bot.slack.notifier import SlackNotifier
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_error
from bot.slack.render.webhook_alert import (
    Which,
    render_in_hand,
    render_missed_outcomes,
    render_not_allowed,
    render_nothing_to_rerun,
    render_still_broken,
    render_works_again,
)
from bot.store import AlertRecord

log = logging.getLogger(__name__)

#: Outcomes after which a push no longer waits for its rerun (it ran, or may have).
SENT: Final = frozenset({"started", "unknown"})

NOT_MINE = "That alert is not one of mine (or not saved yet): nothing was checked or rerun."
NOT_ALLOWED = "Your access rules do not let you see this pipeline's events: nothing was checked or rerun."


@dataclass(frozen=True)
class WebhookAlerts:
    context: InteractionContext
    recovery: WebhookRecovery
    access: AccessPolicy
    actions: EventActions
    notifier: SlackNotifier
    delivery: Delivery

    async def check_again(self, interaction: Interaction, kind: EventKind, event_id: str) -> None:
        """Is the webhook working again? Said to the person; once it is, the alert says so too."""
        found = await self._alert_and_event(interaction, kind, event_id)
        if found is None:
            return
        record, event = found
        assessment = await self._assess(interaction, record, event)
        if assessment is None:
            return
        recovery, missed = assessment.recovery, len(assessment.missed)
        if not recovery.working:
            await self.context.answer(interaction, render_still_broken(event, recovery))
            return
        assert interaction.alert is not None
        await self.notifier.show_recovery(interaction.alert, event, recovery=recovery, missed=missed, record=record)
        await self.context.answer(interaction, render_works_again(event, recovery, missed))

    async def rerun_missed(self, interaction: Interaction, kind: EventKind, event_id: str, which: Which) -> None:
        """Rerun the newest missed push, or all of them oldest first, one after the other (the
        newest commit is the last to start) — only while the webhook works (judged again first:
        a push through a broken webhook would fail the same way), and only pushes no rerun has
        reached. The alert then shows what is left."""
        found = await self._alert_and_event(interaction, kind, event_id)
        if found is None:
            return
        record, event = found
        alert = interaction.alert
        assert alert is not None
        async with self.recovery.hold(record, interaction.user_id) as held_by:
            if held_by is not None:
                await self.context.answer(interaction, render_in_hand(held_by))
                return
            assessment = await self._assess(interaction, record, event)
            if assessment is None:
                return
            recovery, missed = assessment.recovery, assessment.missed
            if not recovery.working or not missed or (which == "newest" and recovery.how == "push"):
                # Broken again (back to Check again), nothing left, or a newer push already ran:
                # nothing is sent to Code Stream.
                await self.notifier.show_recovery(alert, event, recovery=recovery, missed=len(missed), record=record)
                await self.context.answer(interaction, render_nothing_to_rerun(recovery, which))
                return
            event_ids = missed[-1:] if which == "newest" else missed
            outcomes = await self.actions.on_missed_pushes(interaction, event_ids)
            left = [i for i in missed if i not in {o.request.event_id for o in outcomes if o.status in SENT}]
            await self.notifier.show_recovery(alert, event, recovery=recovery, missed=len(left), record=record)
        tally = render_missed_outcomes(interaction.user_id, outcomes)
        if any(o.status not in ("denied", "duplicate") for o in outcomes):
            await self.delivery.public(alert.channel, tally, thread_ts=alert.ts)
        else:  # nothing reached Code Stream (a second click, or not allowed): theirs alone to know
            await self.context.answer(interaction, tally)
        denied = [o for o in outcomes if o.status == "denied"]
        if denied:  # told about the rest, privately
            await self.delivery.ephemeral(alert.channel, interaction.user_id, render_not_allowed(denied))

    async def _assess(self, interaction: Interaction, record: AlertRecord, event: Event) -> Assessment | None:
        """The webhook's state and the pushes still missed; None (the person told why) when Code
        Stream cannot be read."""
        try:
            return await self.recovery.assess(event, record)
        except CodeStreamError as exc:
            await self.context.answer(interaction, render_error(exc))
            return None

    async def _alert_and_event(
        self, interaction: Interaction, kind: EventKind, event_id: str
    ) -> tuple[AlertRecord, Event] | None:
        """The clicked alert's record and its event as Code Stream has it, if the person may see
        it; otherwise they are told why and None is returned."""
        alert = interaction.alert
        if alert is None:
            return None
        try:
            record = await self.recovery.alert_at(alert.channel, alert.ts)
        except Exception:
            log.exception("webhook alert: the alert could not be read")
            await self.context.answer(interaction, render_error(StoreUnavailable()))
            return None
        if record is None or record.event_id != event_id or record.kind != kind:
            await self.context.answer(interaction, _said(NOT_MINE))
            return None
        try:
            event = await self.recovery.read(kind, event_id)
        except CodeStreamError as exc:
            await self.context.answer(interaction, render_error(exc))
            return None
        viewer = await self.context.viewer(interaction)
        if not await self.access.may_see(viewer, Scope(kind, event.project, event.pipeline)):
            await self.context.answer(interaction, _said(NOT_ALLOWED))
            return None
        return record, event


def _said(reason: str) -> SlackMessage:
    return render_error(UsageError(reason))
