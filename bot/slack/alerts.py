"""The alert message people act on: which one shows an event or roots a thread (``AlertFinder``),
and what it shows while an action on it runs (``AlertMarks``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.codestream.models import Event, EventKind
from bot.core.alert_lookup import AlertLookup
from bot.core.digests import RowState
from bot.core.perform import EventProgress
from bot.core.requests import ActionRequest, MessageRef, Outcome
from bot.slack.identity import SlackIdentity
from bot.slack.notifier import SlackNotifier
from bot.slack.render.alert import render_alert_after, render_alert_in_progress
from bot.slack.render.base import event_from_metadata
from bot.slack.render.digest import row_after

log = logging.getLogger(__name__)


@dataclass
class AlertFinder:
    """Finds the alert message an event or a thread is about."""

    alerts: AlertLookup
    web: AsyncWebClient
    identity: SlackIdentity

    async def for_event(self, kind: EventKind, event_id: str) -> MessageRef | None:
        """The event's newest alert, if the bot posted one (None when the store cannot say)."""
        return await self.alerts.for_event(kind, event_id)

    async def for_thread(self, channel: str, thread_ts: str) -> tuple[EventKind, str, MessageRef] | None:
        """Which event does this thread belong to, and which alert message shows it? The store
        first, then the thread parent's message metadata."""
        try:
            found = await self.alerts.in_thread(channel, thread_ts)
        except Exception:
            log.exception("alert lookup failed; trying the message metadata")
            found = None
        if found is not None:
            return found
        try:
            reply = await self.web.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=1
            )
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            log.info("conversations.replies failed", extra={"channel_id": channel, "error_class": type(exc).__name__})
            return None
        messages: list[dict[str, Any]] = reply.get("messages") or []
        parent = messages[0] if messages else {}
        if not await self._posted_by_us(parent):
            return None  # another app's message, whatever metadata it carries, is not our alert
        target = event_from_metadata(parent.get("metadata"))
        if target is None:
            return None
        return target[0], target[1], MessageRef(channel, thread_ts, thread_ts)

    async def _posted_by_us(self, message: dict[str, Any]) -> bool:
        known = await self.identity.get()
        if known is None:
            return False  # cannot tell: a thread is not acted on unless it is surely our alert
        bot_id, user = message.get("bot_id"), message.get("user")
        return (known.bot_id is not None and bot_id == known.bot_id) or (
            known.user_id is not None and user == known.user_id and bot_id is not None
        )


#: How long an action may take before its alert says "Rerun requested by @alice": a fast one
#: (most reruns) goes straight to its outcome, one ``chat.update`` instead of two. Not lower:
#: under a burst every action takes about a second (they share the CPU), and a mark each would
#: double the Slack work exactly when the bot is busiest.
MARK_AFTER_SECONDS = 2.0


@dataclass
class AlertMarks:
    """ "Rerun requested by @alice" on the alert once a request won the claim and its Code Stream
    call is still running ``mark_after`` seconds later, then how it came out. On a digest, the
    event's row says it instead (``SlackNotifier.update_alert``)."""

    notifier: SlackNotifier
    execution_link: Callable[[str | None], str | None]
    mark_after: float = MARK_AFTER_SECONDS
    # "requested by" per alert message and event (a digest has many rows): waiting for its
    # moment (a timer, cancelled if the outcome comes first), or being drawn (a task)
    _marking: dict[tuple[str, str, str], asyncio.TimerHandle | asyncio.Task[bool]] = field(
        default_factory=dict, init=False, repr=False
    )

    def progress(self, request: ActionRequest, alert: MessageRef | None) -> EventProgress:
        """The core's progress port for one request: once it has won the claim, its alert shows
        "Rerun requested by @alice" if the action is still running after ``mark_after``. The
        mark runs beside the Code Stream call (a slow Slack must not delay the rerun);
        ``show_outcome`` waits for it, so the two never arrive out of order."""
        return _Marking(self, request, alert)

    def mark(self, request: ActionRequest, alert: MessageRef, event: Event) -> None:
        key = (alert.channel, alert.ts, request.event_id)

        def draw() -> None:
            message = render_alert_in_progress(
                event,
                verb=request.verb,
                actor_id=request.actor.user_id,
                execution_url=self.execution_link(event.execution_id),
                now=datetime.now(UTC),
            )
            row = RowState.requested(request.verb, request.actor.user_id)
            update = self.notifier.update_alert(alert, request.kind, request.event_id, message, row)
            self._marking[key] = asyncio.create_task(update)

        self._marking[key] = asyncio.get_running_loop().call_later(self.mark_after, draw)

    async def show_outcome(self, alert: MessageRef, outcome: Outcome) -> None:
        """The alert (or its digest row) once the action has an outcome."""
        marking = self._marking.pop((alert.channel, alert.ts, outcome.request.event_id), None)
        if isinstance(marking, asyncio.TimerHandle):
            marking.cancel()  # done before its mark was due: the outcome alone
        elif marking is not None:
            await marking
        message = render_alert_after(outcome, now=datetime.now(UTC))
        if message is not None:
            row = row_after(outcome)
            await self.notifier.update_alert(alert, outcome.request.kind, outcome.request.event_id, message, row)


@dataclass(frozen=True)
class _Marking:
    """``AlertMarks.progress``: the port the core tells once the claim is won."""

    marks: AlertMarks
    request: ActionRequest
    alert: MessageRef | None

    async def claimed(self, target: Event) -> None:
        if self.alert is not None:
            self.marks.mark(self.request, self.alert, target)
