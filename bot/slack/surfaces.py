"""What happens after a listener has acked: turn a Slack interaction into an ActionRequest, run
``perform``, and show the Outcome where the person will look for it.

Listeners (``bot.slack.listeners``) only extract fields from payloads and call these methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.app.runtime import Runtime
from bot.codestream.errors import CodeStreamError
from bot.codestream.ids import is_valid_id
from bot.codestream.models import EVENT_KINDS, Event, EventKind
from bot.core import audit
from bot.core.access import Scope, Viewer
from bot.core.audit import parse_audit_args
from bot.core.errors import UsageError
from bot.core.logs import request_id
from bot.core.perform import OnClaimed
from bot.core.requests import ActionRequest, Actor, MessageRef, Outcome, Surface, Verb, new_request_id
from bot.slack.delivery import Delivery, Respond
from bot.slack.notifier import render_alert_after
from bot.slack.parse import ParsedCommand
from bot.slack.render.audit import render_audit
from bot.slack.render.messages import (
    METADATA_EVENT_TYPE,
    SlackMessage,
    render_alert_in_progress,
    render_error,
    render_event_list,
    render_help,
    render_outcome,
    render_usage_error,
)
from bot.slack.signature import SignatureLedger
from bot.slack.users import UserDirectory
from bot.store import ActionRecord

log = logging.getLogger(__name__)

# Outcomes the whole channel should see; the rest only concern the person who asked.
PUBLIC_STATUSES = frozenset({"started", "unknown"})
# Interactions worked on at once, after their ack (100 keeps 100 concurrent reruns parallel).
MAX_CONCURRENT_WORK = 100
# Slack retries an unacknowledged event up to three times within about an hour.
EVENT_DEDUPE_SECONDS = 3600.0


# The alert message an action came from: where to thread replies and what to update.
AlertRef = MessageRef


def now() -> datetime:
    return datetime.now(UTC)


class Surfaces:
    def __init__(self, runtime: Runtime, delivery: Delivery, users: UserDirectory) -> None:
        self.runtime = runtime
        self.delivery = delivery
        self.users = users
        self._marking: dict[tuple[str, str], asyncio.Task[bool]] = {}  # "requested by" updates in flight
        # Work after the ack is bounded: a burst queues here instead of piling up in the event
        # loop and the HTTP pools, so acks stay fast (Slack's deadline is 3 s).
        self._working = asyncio.Semaphore(MAX_CONCURRENT_WORK)
        store = runtime.store

        async def claim(key: str, window: float) -> bool:
            return (await store.claim(key, new_request_id(), window)).won

        self._ledger = SignatureLedger(claim)

    # --- slash command and @mentions ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _interaction(self) -> AsyncIterator[None]:
        """One Slack interaction after its ack: a request id in every log line from here through
        perform() to the Code Stream call, counted as in flight until answered (graceful
        shutdown waits for it), and one of at most MAX_CONCURRENT_WORK at once."""
        token = request_id.set(new_request_id())
        try:
            async with self.runtime.inflight.track(), self._working:
                yield
        finally:
            request_id.reset(token)

    async def command(
        self,
        parsed: ParsedCommand,
        *,
        user_id: str,
        user_name: str | None,
        channel_id: str | None,
        surface: Surface,
        respond: Respond | None = None,
        thread_ts: str | None = None,
        team_id: str | None = None,
    ) -> None:
        async with self._interaction():
            if parsed.command == "help":
                await self.delivery.ephemeral(channel_id, user_id, render_help(), thread_ts=thread_ts, respond=respond)
                return
            if parsed.command in ("list", "audit"):
                viewer = await self._viewer(user_id, channel_id, team_id)
                if parsed.command == "list":
                    message = await self._failed_events(parsed.kind, viewer)
                else:
                    message = await self._audit(parsed.args, viewer)
                await self.delivery.ephemeral(channel_id, user_id, message, thread_ts=thread_ts, respond=respond)
                return
            assert parsed.event_id is not None
            assert parsed.kind is not None
            assert parsed.command in ("rerun", "resume", "show")
            verb: Verb = parsed.command
            alert = await self._known_alert(verb, parsed.kind, parsed.event_id)
            request = await self._request(
                verb, parsed.kind, parsed.event_id, user_id, user_name, surface, channel_id, alert, team_id
            )
            outcome = await self.runtime.actions.perform(
                request, on_claimed=self._mark_in_progress(request, alert) if alert else None
            )
            message = render_outcome(outcome, now=now())
            if outcome.status in PUBLIC_STATUSES:
                ts = await self.delivery.public(channel_id, message, thread_ts=thread_ts, respond=respond)
                await self._after_action(
                    outcome, summary_channel=channel_id if ts else None, summary_ts=ts, alert=alert
                )
            else:
                await self.delivery.ephemeral(channel_id, user_id, message, thread_ts=thread_ts, respond=respond)
                if (
                    alert is not None
                    and outcome.action_id is not None
                    and outcome.status not in ("denied", "duplicate")
                ):
                    await self._update_alert(alert, outcome)

    async def _viewer(self, user_id: str, channel_id: str | None, team_id: str | None) -> Viewer:
        info = await self.users.lookup(user_id)
        return Viewer(user_id, channel_id, (info.team_id if info is not None else None) or team_id)

    async def _audit(self, args: tuple[str, ...], viewer: Viewer) -> SlackMessage:
        try:
            query = parse_audit_args(args)
        except UsageError as exc:
            return render_usage_error(exc)
        policy = self.runtime.access

        async def visible(row: ActionRecord) -> bool:
            kind = row.kind if row.kind in EVENT_KINDS else "git"
            return await policy.may_see(viewer, Scope(kind, row.project, row.pipeline))

        rows, has_more = await audit.fetch(self.runtime.store, query, visible=visible)
        return render_audit(rows, query, has_more=has_more, now=now())

    async def _failed_events(self, only: EventKind | None, viewer: Viewer) -> SlackMessage:
        kinds = [only] if only else list(EVENT_KINDS)
        events: list[Event] = []
        try:
            for kind in kinds:
                page = await self.runtime.client.list_events(kind, orderby="updatedAt desc", top=50)
                for event in page.events:
                    # Only what the policy's show rules let this person see, here.
                    if event.is_failure and await self.runtime.access.may_see(viewer, Scope.of(kind, event)):
                        events.append(event)
        except CodeStreamError as exc:
            return render_error(exc)
        events.sort(key=lambda e: e.updated or datetime.min.replace(tzinfo=UTC), reverse=True)
        urls = {e.id: self.runtime.settings.execution_ui_url(e.execution_id) for e in events if e.id and e.execution_id}
        return render_event_list(events, execution_urls=urls, now=now())

    # --- buttons and thread replies on an alert -----------------------------------------------

    async def act_on_alert(
        self,
        verb: Verb,
        kind: EventKind,
        event_id: str,
        *,
        user_id: str,
        user_name: str | None,
        surface: Surface,
        alert: AlertRef,
        team_id: str | None = None,
    ) -> None:
        async with self._interaction():
            request = await self._request(
                verb, kind, event_id, user_id, user_name, surface, alert.channel, alert if verb != "show" else None,
                team_id,
            )
            on_claimed = self._mark_in_progress(request, alert) if verb != "show" else None
            outcome = await self.runtime.actions.perform(request, on_claimed=on_claimed)
            message = render_outcome(outcome, now=now())
            if outcome.status in ("denied", "duplicate"):
                await self.delivery.ephemeral(alert.channel, user_id, message, thread_ts=alert.thread_ts)
                return
            ts = await self.delivery.public(alert.channel, message, thread_ts=alert.thread_ts)
            if verb != "show" and outcome.action_id is not None:
                await self._after_action(
                    outcome, summary_channel=alert.channel if ts else None, summary_ts=ts, alert=alert
                )

    async def accepted_once(self, headers: Mapping[str, Sequence[str] | str]) -> bool:
        """After the ack, before any work: False for a signed request another replica (or this
        one) already took — a replay does nothing."""
        flat = {k.lower(): (v if isinstance(v, str) else (v[0] if v else "")) for k, v in headers.items()}
        if await self._ledger.first_use(flat):
            return True
        log.warning("replayed Slack request ignored")
        return False

    async def first_delivery(self, event_id: object) -> bool:
        """False when Slack re-delivers an Events API event (same ``event_id``) that this or another
        replica already took: a retry after a slow ack must not act or answer twice."""
        if not isinstance(event_id, str) or not event_id:
            return True
        try:
            claim = await self.runtime.store.claim(f"slack-event:{event_id}", new_request_id(), EVENT_DEDUPE_SECONDS)
        except Exception:
            log.exception("event de-duplication unavailable; relying on the action claim")
            return True
        return claim.won

    async def alert_for_thread(self, channel: str, thread_ts: str) -> tuple[EventKind, str, AlertRef] | None:
        """Which event does this thread belong to, and which alert message shows it? The store
        first, then the thread parent's message metadata."""
        try:
            record = await self.runtime.store.find_alert_by_message(channel, thread_ts)
        except Exception:
            log.exception("alert lookup failed; trying the message metadata")
            record = None
        if record is not None and record.kind in EVENT_KINDS:
            alert = AlertRef(channel, record.ts, thread_ts)
            return record.kind, record.event_id, alert
        try:
            reply = await self.delivery.web.conversations_replies(
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
        return target[0], target[1], AlertRef(channel, thread_ts, thread_ts)

    async def _posted_by_us(self, message: dict[str, Any]) -> bool:
        identity = self.runtime.identity
        known = await identity.get() if identity is not None else None
        if known is None:
            return False  # cannot tell: a thread is not acted on unless it is surely our alert
        bot_id, user = message.get("bot_id"), message.get("user")
        return (known.bot_id is not None and bot_id == known.bot_id) or (
            known.user_id is not None and user == known.user_id and bot_id is not None
        )

    # --- shared ---------------------------------------------------------------------------

    async def _request(
        self,
        verb: Verb,
        kind: EventKind,
        event_id: str,
        user_id: str,
        user_name: str | None,
        surface: Surface,
        channel_id: str | None,
        alert: AlertRef | None,
        team_id: str | None,
    ) -> ActionRequest:
        info = await self.users.lookup(user_id)
        name = (info.name if info is not None else None) or user_name
        # The person's home workspace: users.info is authoritative (a Slack Connect guest's is
        # their own organisation's); the payload's hint only when Slack could not be asked.
        team = (info.team_id if info is not None else None) or team_id
        return ActionRequest(
            verb=verb,
            kind=kind,
            event_id=event_id,
            actor=Actor(user_id, name),
            surface=surface,
            channel_id=channel_id,
            request_id=request_id.get() or new_request_id(),
            alert=alert,
            team_id=team,
        )

    async def _known_alert(self, verb: Verb, kind: EventKind, event_id: str) -> AlertRef | None:
        if verb == "show":
            return None
        try:
            record = await self.runtime.store.latest_alert_for_event(kind, event_id)
        except Exception:
            log.exception("alert lookup failed")
            return None
        if record is None:
            return None
        return AlertRef(record.channel_id, record.ts, record.thread_ts or record.ts)

    def _mark_in_progress(self, request: ActionRequest, alert: AlertRef | None) -> OnClaimed:
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
                execution_url=self.runtime.settings.execution_link(event.execution_id),
                now=now(),
            )
            update = self.delivery.update(alert.channel, alert.ts, message)
            self._marking[(alert.channel, alert.ts)] = asyncio.create_task(update)

        return mark

    async def _update_alert(self, alert: AlertRef, outcome: Outcome) -> None:
        marking = self._marking.pop((alert.channel, alert.ts), None)
        if marking is not None:
            await marking
        message = render_alert_after(outcome, now=now())
        if message is not None:
            await self.delivery.update(alert.channel, alert.ts, message)

    async def _after_action(
        self, outcome: Outcome, *, summary_channel: str | None, summary_ts: str | None, alert: AlertRef | None
    ) -> None:
        """After the answer is shown. Code Stream may have acted: nothing here may end in "please
        try again", so failures are logged and left to the reconciler and follow-through."""
        try:
            if alert is not None:
                await self._update_alert(alert, outcome)
            if outcome.status == "unknown":
                summary = None
                if summary_channel is not None and summary_ts is not None:
                    summary = MessageRef(summary_channel, summary_ts, summary_ts)
                await self.runtime.actions.follow_unknown(outcome, summary)
                return
            tracker = self.runtime.followups
            if tracker is not None and outcome.status == "started" and summary_channel and summary_ts:
                await tracker.track(outcome, channel=summary_channel, summary_ts=summary_ts, alert=alert)
        except Exception:
            log.exception("after the action: Slack update or follow-up failed", extra={"action_id": outcome.action_id})


def event_from_metadata(metadata: Any) -> tuple[EventKind, str] | None:
    """The alert's message metadata -> (kind, id); anything malformed -> None."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return None
    kind, event_id = payload.get("kind"), payload.get("id")
    if kind not in EVENT_KINDS or not isinstance(event_id, str):
        return None
    return (kind, event_id.lower()) if is_valid_id(event_id) else None
