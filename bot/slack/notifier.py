"""The Slack side of an outcome that is known only later (``bot.core.reconcile.OutcomeNotifier``), and
the alert update every outcome shares: the summary updated in place (or posted where the request
came from), the alert resolved or given its buttons back, the follow-through started."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.core.requests import MessageRef, Outcome
from bot.slack.delivery import Delivery
from bot.slack.render.messages import SlackMessage, is_checking, render_alert_resolved, render_outcome

if TYPE_CHECKING:
    from bot.core.followup import FollowupTracker

log = logging.getLogger(__name__)


def render_alert_after(outcome: Outcome, *, now: datetime) -> SlackMessage | None:
    """The alert once an action on it has an outcome; None when there is no event to draw."""
    if outcome.event is None:
        return None
    reason = getattr(outcome.error, "user_message", None) if outcome.error else None
    return render_alert_resolved(
        outcome.event,
        verb=outcome.request.verb,
        actor_id=outcome.request.actor.user_id,
        outcome_status="checking" if is_checking(outcome) else outcome.status,
        execution_url=outcome.execution_url,
        execution_index=outcome.event.execution_index if outcome.status == "started" else None,
        final_status=None,
        now=now,
        reason=reason if outcome.status != "not_started" or not outcome.settled_late else None,
    )


class SlackOutcomeNotifier:
    def __init__(self, delivery: Delivery, tracker: Callable[[], FollowupTracker | None]) -> None:
        self.delivery = delivery
        self.tracker = tracker

    async def settled(self, outcome: Outcome, summary: MessageRef | None) -> None:
        now = datetime.now(UTC)
        message = render_outcome(outcome, now=now)
        request = outcome.request
        alert = request.alert
        where: MessageRef | None = None
        if summary is not None and await self.delivery.update(summary.channel, summary.ts, message):
            where = summary
        else:
            # No answer to update (the process that had it died first, or Slack refused the
            # update): post one where the person will look, in the alert's thread if there is one.
            channel = alert.channel if alert is not None else request.channel_id
            thread = alert.thread_ts if alert is not None else None
            if channel is not None:
                ts = await self.delivery.post(channel, message, thread_ts=thread)
                where = MessageRef(channel, ts, thread or ts) if ts is not None else None
        if alert is not None:
            resolved = render_alert_after(outcome, now=now)
            if resolved is not None:
                await self.delivery.update(alert.channel, alert.ts, resolved)
        tracker = self.tracker()
        if outcome.status == "started" and tracker is not None and where is not None:
            try:
                await tracker.track(outcome, channel=where.channel, summary_ts=where.ts, alert=alert)
            except Exception:
                log.exception("could not start following the execution", extra={"action_id": outcome.action_id})
