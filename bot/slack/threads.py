"""Which alert a thread belongs to, and whether Slack already delivered this event or request:
the checks every Events API listener makes before doing anything."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from bot.codestream.models import EVENT_KINDS, EventKind
from bot.core.requests import MessageRef, new_request_id
from bot.slack.delivery import Delivery
from bot.slack.identity import SlackIdentity
from bot.slack.render.base import event_from_metadata
from bot.slack.signature import SignatureLedger
from bot.store import Store

log = logging.getLogger("bot.slack.surfaces")

# Slack retries an unacknowledged event up to three times within about an hour.
EVENT_DEDUPE_SECONDS: Final = 3600.0


class Deliveries:
    """At most once per Slack delivery, across replicas."""

    def __init__(self, store: Store) -> None:
        self.store = store

        async def claim(key: str, window: float) -> bool:
            return (await store.claim(key, new_request_id(), window)).won

        self._ledger = SignatureLedger(claim)

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
            claim = await self.store.claim(f"slack-event:{event_id}", new_request_id(), EVENT_DEDUPE_SECONDS)
        except Exception:
            log.exception("event de-duplication unavailable; relying on the action claim")
            return True
        return claim.won


class AlertThreads:
    def __init__(self, store: Store, delivery: Delivery, identity: SlackIdentity | None) -> None:
        self.store = store
        self.delivery = delivery
        self.identity = identity

    async def alert_for_thread(self, channel: str, thread_ts: str) -> tuple[EventKind, str, MessageRef] | None:
        """Which event does this thread belong to, and which alert message shows it? The store
        first, then the thread parent's message metadata."""
        try:
            record = await self.store.newest_alert_in_thread(channel, thread_ts)
        except Exception:
            log.exception("alert lookup failed; trying the message metadata")
            record = None
        if record is not None and record.kind in EVENT_KINDS:
            return record.kind, record.event_id, MessageRef(channel, record.ts, thread_ts)
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
        return target[0], target[1], MessageRef(channel, thread_ts, thread_ts)

    async def _posted_by_us(self, message: dict[str, Any]) -> bool:
        known = await self.identity.get() if self.identity is not None else None
        if known is None:
            return False  # cannot tell: a thread is not acted on unless it is surely our alert
        bot_id, user = message.get("bot_id"), message.get("user")
        return (known.bot_id is not None and bot_id == known.bot_id) or (
            known.user_id is not None and user == known.user_id and bot_id is not None
        )
