"""Mutes as people make and end them from Slack: the event read from Code Stream, the access
check and the audit row (``bot.core.mutes``), and the list of mutes a person may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.codestream.client import CodeStreamClient
from bot.codestream.models import EventKind, as_kind
from bot.core import mutes
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.mutes import MuteAsked, MuteScope
from bot.core.requests import Actor, Surface
from bot.store import MuteRecord, Store


@dataclass(frozen=True)
class Muting:
    store: Store
    client: CodeStreamClient
    access: AccessPolicy

    async def mute(
        self,
        kind: EventKind,
        event_id: str,
        *,
        scope: MuteScope,
        duration: str,
        actor: Actor,
        surface: Surface,
        channel_id: str | None,
        team_id: str | None,
    ) -> MuteRecord:
        """Mute what ``scope`` names of the event; CodeStreamError when it cannot be read,
        AccessDenied or UsageError (audited) when it cannot be muted."""
        event = await self.client.get_event(kind, event_id)
        asked = MuteAsked(event, scope, duration, actor, surface, channel_id, team_id)
        return await mutes.mute(self.store, self.access, asked)

    async def unmute(self, mute_id: int, actor: Actor, *, channel_id: str | None, team_id: str | None) -> MuteRecord:
        """End mute ``mute_id``; UsageError when there is no such mute on, AccessDenied (audited)."""
        return await mutes.unmute(self.store, self.access, mute_id, actor, channel_id=channel_id, team_id=team_id)

    async def visible(self, viewer: Viewer, now: datetime) -> list[MuteRecord]:
        """The mutes on now of what ``viewer`` may see (the policy's show rules, and the workspace)."""
        shown = []
        for mute in await self.store.mutes.active(now):
            if await self.access.may_see(viewer, Scope(as_kind(mute.kind) or "git", mute.project, mute.pipeline)):
                shown.append(mute)
        return shown
