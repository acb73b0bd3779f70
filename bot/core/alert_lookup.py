"""Which alert message shows an event, and which event a thread is about: the store's record of
the alerts posted (the Slack layer falls back to the message metadata for a thread)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.codestream.models import EventKind, as_kind
from bot.core.requests import MessageRef
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertLookup:
    store: Store

    async def for_event(self, kind: EventKind, event_id: str) -> MessageRef | None:
        """The newest alert of the event; None when there is none, or the store cannot say (logged)."""
        try:
            record = await self.store.alerts.latest_for_event(kind, event_id)
        except Exception:
            log.exception("alert lookup failed")
            return None
        if record is None:
            return None
        return MessageRef(record.channel_id, record.ts, record.thread_ts or record.ts)

    async def in_thread(self, channel: str, thread_ts: str) -> tuple[EventKind, str, MessageRef] | None:
        """The event of the newest alert posted in this thread, and that alert; raises when the
        store cannot say."""
        record = await self.store.alerts.newest_in_thread(channel, thread_ts)
        kind = as_kind(record.kind) if record is not None else None
        if record is None or kind is None:
            return None
        return kind, record.event_id, MessageRef(channel, record.ts, thread_ts)
