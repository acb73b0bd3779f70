"""Recent failed events as one person may see them (the access policy's show rules), and which
of them are muted: the ``list`` command and the App Home read them here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.models import Event, EventKind
from bot.core import mutes
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.store import Store

PAGE: Final = 50  # the newest events of each kind read


@dataclass(frozen=True)
class RecentFailures:
    client: CodeStreamClient
    store: Store
    access: AccessPolicy

    async def visible(self, viewer: Viewer, kinds: Sequence[EventKind]) -> list[Event]:
        """Recent failed events (a page of each kind) the policy's show rules let ``viewer`` see,
        newest first; CodeStreamError when Code Stream cannot be read."""
        events: list[Event] = []
        for kind in kinds:
            page = await self.client.list_events(kind, orderby="updatedAt desc", top=PAGE)
            for event in page.events:
                if event.is_failure and await self.access.may_see(viewer, Scope.of(kind, event)):
                    events.append(event)
        events.sort(key=lambda e: e.updated or datetime.min.replace(tzinfo=UTC), reverse=True)
        return events

    async def muted(self, events: Sequence[Event], now: datetime) -> dict[str, str]:
        """Event id -> what mutes it, for those of ``events`` a mute on now matches."""
        active = await self.store.mutes.active(now)
        return {
            e.id: mutes.describe(mute)
            for e in events
            if e.id and (mute := next((m for m in active if mutes.matches(m, e)), None)) is not None
        }
