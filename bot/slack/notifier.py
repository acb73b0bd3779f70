"""The Slack side of the core's ports (``bot.core.ports``): alerts posted, followed executions'
summaries updated in place, the alert resolved at the end, and outcomes known only later shown
where the person will look. Rendering is here; the core only says what happened."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bot.codestream.models import Event, Execution
from bot.codestream.user_operations import UserOperation
from bot.core.approvals.ports import ApprovalEnd
from bot.core.control import ControlOutcome
from bot.core.digests import SAVE_WAIT, DigestBoard, Draw, RowState
from bot.core.failures import FailureContext, failure_context
from bot.core.ports import Delivered, Ending
from bot.core.requests import MessageRef, Outcome
from bot.core.runs import RUN_KIND, RunOutcome
from bot.core.webhook_recovery import Recovery
from bot.slack.delivery import Delivery
from bot.slack.render.alert import render_alert_after
from bot.slack.render.approval import render_approval_end, render_approval_request
from bot.slack.render.base import MAX_BLOCKS, fallback_text, section
from bot.slack.render.control import acted_line, render_control_outcome
from bot.slack.render.digest import render_digest, row_after
from bot.slack.render.messages import (
    SlackMessage,
    render_alert,
    render_alert_resolved,
    render_followup,
    render_outcome,
)
from bot.slack.render.run import render_run_outcome, render_run_progress
from bot.store import AlertRecord, DigestRecord, DigestRow, FollowupRecord

log = logging.getLogger(__name__)

_MISSING_NOTE = (
    "🔍 *Stopped following:* Code Stream no longer has this execution (deleted, or its id is wrong); "
    "check the pipeline's executions in Code Stream.",
    "stopped following: Code Stream no longer has this execution",
)


def _with_note(message: SlackMessage, mrkdwn: str, plain: str) -> SlackMessage:
    """The message with one more section before its closing context line."""
    blocks = list(message.blocks)
    blocks.insert(max(0, len(blocks) - 1), section(mrkdwn))
    return replace(message, text=fallback_text(message.text, plain), blocks=blocks[:MAX_BLOCKS])


class SlackNotifier:
    """Implements ``AlertNotifier``, ``FollowThroughView``, ``OutcomeNotifier``, ``ControlNotifier``
    and ``ApprovalNotifier``.

    An alert that is a row of a storm digest is never drawn over the digest: the row's state
    changes and the digest is redrawn (``update_alert``)."""

    def __init__(
        self,
        delivery: Delivery,
        *,
        execution_link: Callable[[str | None], str | None],
        digests: Callable[[Draw], DigestBoard] | None = None,
    ) -> None:
        self.delivery = delivery
        self.execution_link = execution_link  # an execution id -> its page in the Code Stream UI
        # The digests' board (bot.core.digests), drawing with this notifier; None: no digests.
        self.digests = digests(self.draw_digest) if digests is not None else None

    async def update_alert(
        self, alert: MessageRef, kind: str, event_id: str, message: SlackMessage, row: RowState
    ) -> bool:
        """Show what happened on the alert ``alert``: ``message`` over it, or, when it is a digest,
        ``row`` as the state of the event's row."""
        if self.digests is None or alert.plain:
            return await self.delivery.update(alert.channel, alert.ts, message)
        try:
            digest = await self.digests.at(alert.channel, alert.ts, wait=SAVE_WAIT if alert.digest else 0.0)
        except Exception as exc:  # noqa: BLE001 - cannot tell whether it is a digest: draw nothing
            log.warning("alert not updated: the store cannot say what it is", extra={"error_class": type(exc).__name__})
            return False
        if digest is None:
            if alert.digest:  # a digest the store does not know (yet): never one alert drawn over it
                log.warning("digest row not updated: no such digest in the store", extra={"channel_id": alert.channel})
                return False
            return await self.delivery.update(alert.channel, alert.ts, message)
        return await self.digests.set_state(digest, kind, event_id, row)

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
        recovery: Recovery | None = None,
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
            recovery=recovery,
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
        ts, refused = await self.delivery.post_or_why(channel, message, thread_ts=thread_ts, paced=True)
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
        return await self.delivery.update(alert.channel, alert.ts, message, paced=True)

    async def show_recovery(
        self, alert: MessageRef, event: Event, *, recovery: Recovery, missed: int, record: AlertRecord
    ) -> bool:
        """A broken webhook's alert once it works again: since when, and its missed pushes."""
        failure = FailureContext(webhook=recovery.webhook)  # the name; who can fix it no longer matters
        message = self._alert(
            event, mention=record.mention, failure=failure, author=record.author, repeats=missed - 1, recovery=recovery
        )
        return await self.delivery.update(alert.channel, alert.ts, message)

    async def post_digest(self, channel: str, rows: Sequence[DigestRow], *, mention: str | None) -> Delivered:
        message = render_digest(rows, mention=mention, execution_link=self.execution_link, now=datetime.now(UTC))
        ts, refused = await self.delivery.post_or_why(channel, message, paced=True)
        return Delivered(ts, refused)

    async def draw_digest(self, digest: DigestRecord, rows: Sequence[DigestRow]) -> bool:
        message = render_digest(rows, mention=digest.mention, execution_link=self.execution_link, now=datetime.now(UTC))
        return await self.delivery.update(digest.channel_id, digest.ts, message, paced=True)

    # --- FollowThroughView -----------------------------------------------------------------

    async def show_progress(
        self, followup: FollowupRecord, outcome: Outcome, execution: Execution, *, ending: Ending, now: datetime
    ) -> bool:
        if followup.kind == RUN_KIND:
            return await self._show_run(followup, execution, ending=ending)
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
        summary = MessageRef(followup.channel_id, followup.summary_ts, followup.summary_ts)
        row = RowState.after(outcome, final_status=execution.status, execution_index=execution.index)
        return await self.update_alert(summary, followup.kind, followup.event_id, message, row)

    async def _show_run(self, followup: FollowupRecord, execution: Execution, *, ending: Ending) -> bool:
        message = render_run_progress(
            execution,
            actor_id=followup.actor_id,
            url=self.execution_link(followup.execution_id),
            gave_up=ending == "gave_up",
            acted=acted_line(followup.control_verb, followup.control_by, followup.control_at),
            running=ending == "running",
        )
        return await self.delivery.update(followup.channel_id, followup.summary_ts, message)

    async def run_settled(self, outcome: RunOutcome, summary: MessageRef | None) -> MessageRef | None:
        """A run's late outcome: over the "answer lost" message, else posted where it was asked."""
        message = render_run_outcome(outcome, now=datetime.now(UTC))
        if summary is not None and await self.delivery.update(summary.channel, summary.ts, message):
            return summary
        channel = outcome.request.channel_id
        if channel is None:
            return None
        ts = await self.delivery.post(channel, message)
        return MessageRef(channel, ts, ts) if ts else None

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
        alert = MessageRef(followup.alert_channel_id, followup.alert_ts, followup.alert_ts)
        row = RowState.after(outcome, final_status=final_status, execution_index=index)
        return await self.update_alert(alert, followup.kind, followup.event_id, message, row)

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
        row = row_after(outcome)
        kind, event_id = request.kind, request.event_id
        if summary is not None and await self.update_alert(summary, kind, event_id, message, row):
            where = summary
        else:
            # No answer to update (the process that had it died first, or Slack refused the
            # update): post one where the person will look, in the alert's thread if there is one.
            channel = alert.channel if alert is not None else request.channel_id
            thread = alert.thread_ts if alert is not None else None
            if channel is not None:
                ts = await self.delivery.post(channel, message, thread_ts=thread)
                where = MessageRef(channel, ts, thread or ts) if ts is not None else None
        if alert is not None and (summary is None or (alert.channel, alert.ts) != (summary.channel, summary.ts)):
            resolved = render_alert_after(outcome, now=now)
            if resolved is not None:
                await self.update_alert(alert, kind, event_id, resolved, row)
        return where
