"""The Slack side of the core's ports (``bot.core.ports``): alerts posted, followed executions'
summaries updated in place, the alert resolved at the end, and outcomes known only later shown
where the person will look. Rendering is here; the core only says what happened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from bot.codestream.models import Event, Execution
from bot.codestream.user_operations import UserOperation
from bot.core.approvals.ports import ApprovalEnd
from bot.core.control import ControlOutcome
from bot.core.failures import FailureContext, failure_context
from bot.core.ports import Delivered, Ending
from bot.core.requests import MessageRef, Outcome
from bot.slack.delivery import Delivery
from bot.slack.render.approval import render_approval_end, render_approval_request
from bot.slack.render.base import MAX_BLOCKS, fallback_text, section
from bot.slack.render.control import acted_line, render_control_outcome
from bot.slack.render.messages import (
    SlackMessage,
    is_checking,
    render_alert,
    render_alert_resolved,
    render_followup,
    render_outcome,
)
from bot.store import FollowupRecord

_MISSING_NOTE = (
    "🔍 *Stopped following:* Code Stream no longer has this execution (deleted, or its id is wrong); "
    "check the pipeline's executions in Code Stream.",
    "stopped following: Code Stream no longer has this execution",
)


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


def _with_note(message: SlackMessage, mrkdwn: str, plain: str) -> SlackMessage:
    """The message with one more section before its closing context line."""
    blocks = list(message.blocks)
    blocks.insert(max(0, len(blocks) - 1), section(mrkdwn))
    return replace(message, text=fallback_text(message.text, plain), blocks=blocks[:MAX_BLOCKS])


class SlackNotifier:
    """Implements ``AlertNotifier``, ``FollowThroughView``, ``OutcomeNotifier``, ``ControlNotifier``
    and ``ApprovalNotifier``."""

    def __init__(self, delivery: Delivery, *, execution_link: Callable[[str | None], str | None]) -> None:
        self.delivery = delivery
        self.execution_link = execution_link  # an execution id -> its page in the Code Stream UI

    # --- AlertNotifier ---------------------------------------------------------------------

    def _alert(
        self,
        event: Event,
        *,
        mention: str | None,
        failure: FailureContext | None,
        author: str | None,
        repeat: bool = False,
        repeats: int = 0,
    ) -> SlackMessage:
        """The alert as it stands now, linked to its execution."""
        return render_alert(
            event,
            execution_url=self.execution_link(event.execution_id),
            now=datetime.now(UTC),
            mention=mention,
            failure=failure,
            author=author,
            repeat=repeat,
            repeats=repeats,
        )

    async def post_alert(
        self,
        event: Event,
        *,
        channel: str,
        mention: str | None,
        thread_ts: str | None,
        failure: FailureContext | None = None,
        author: str | None = None,
        repeat: bool = False,
    ) -> Delivered:
        message = self._alert(event, mention=mention, failure=failure, author=author, repeat=repeat)
        ts, refused = await self.delivery.post_or_why(channel, message, thread_ts=thread_ts)
        return Delivered(ts, refused)

    async def show_repeats(
        self,
        alert: MessageRef,
        event: Event,
        *,
        failure: FailureContext | None,
        repeats: int,
        mention: str | None = None,
        author: str | None = None,
    ) -> bool:
        message = self._alert(event, mention=mention, failure=failure, author=author, repeats=repeats)
        return await self.delivery.update(alert.channel, alert.ts, message)

    # --- FollowThroughView -----------------------------------------------------------------

    async def show_progress(
        self, followup: FollowupRecord, outcome: Outcome, execution: Execution, *, ending: Ending, now: datetime
    ) -> bool:
        failure = failure_context(execution)  # the read the tracker made: stages included
        message = render_followup(
            outcome,
            execution=execution,
            now=now,
            gave_up=ending == "gave_up",
            failure=failure,
            execution_id=followup.execution_id if ending == "running" else None,
            acted=acted_line(followup.control_verb, followup.control_by, followup.control_at),
        )
        if ending == "missing":
            message = _with_note(message, *_MISSING_NOTE)
        return await self.delivery.update(followup.channel_id, followup.summary_ts, message)

    async def resolve_alert(
        self, followup: FollowupRecord, outcome: Outcome, execution: Execution, *, final_status: str, now: datetime
    ) -> bool:
        if followup.alert_channel_id is None or followup.alert_ts is None or outcome.event is None:
            return False
        index = execution.index if execution.index is not None else outcome.event.execution_index
        message = render_alert_resolved(
            outcome.event,
            verb=outcome.request.verb,
            actor_id=outcome.request.actor.user_id,
            outcome_status="started",
            execution_url=outcome.execution_url,
            execution_index=index,
            final_status=final_status,
            now=now,
            failure=failure_context(execution),
        )
        return await self.delivery.update(followup.alert_channel_id, followup.alert_ts, message)

    # --- ApprovalNotifier ------------------------------------------------------------------

    async def post_approval(self, operation: UserOperation, *, channel: str, mention: str | None) -> Delivered:
        url = self.execution_link(operation.execution_id)
        message = render_approval_request(operation, execution_url=url, mention=mention)
        ts, refused = await self.delivery.post_or_why(channel, message)
        return Delivered(ts, refused)

    async def show_approval_end(self, where: MessageRef, operation: UserOperation, end: ApprovalEnd) -> bool:
        message = render_approval_end(operation, end, execution_url=self.execution_link(operation.execution_id))
        return await self.delivery.update(where.channel, where.ts, message)

    # --- ControlNotifier -------------------------------------------------------------------

    async def control_settled(self, outcome: ControlOutcome, answer: MessageRef | None) -> None:
        message = render_control_outcome(outcome, now=datetime.now(UTC))
        if answer is not None and await self.delivery.update(answer.channel, answer.ts, message):
            return
        if outcome.request.channel_id is not None:
            await self.delivery.post(outcome.request.channel_id, message)

    # --- OutcomeNotifier -------------------------------------------------------------------

    async def settled(self, outcome: Outcome, summary: MessageRef | None) -> MessageRef | None:
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
        return where
