"""Mutes from Slack: the alert's overflow menu, ``/codestream mutes`` and ``unmute <n>``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EventKind
from bot.core import mutes
from bot.core.commands import Invocation
from bot.core.errors import AccessDenied, StoreUnavailable, UsageError
from bot.core.mutes import MuteScope
from bot.core.muting import Muting
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_error, render_usage_error
from bot.slack.render.mute import render_muted, render_mutes, render_unmuted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mutes:
    """The mute flow: the alert's menu, and the ``mutes`` and ``unmute`` commands."""

    context: InteractionContext
    muting: Muting
    delivery: Delivery

    async def from_alert(
        self, interaction: Interaction, kind: EventKind, event_id: str, scope: MuteScope, duration: str
    ) -> None:
        """The overflow menu's choice: mute, say so in the alert's thread; a refusal to the person."""
        who = await self.context.who(interaction)
        try:
            record = await self.muting.mute(
                kind,
                event_id,
                scope=scope,
                duration=duration,
                actor=who.actor,
                surface="button",
                channel_id=interaction.channel_id,
                team_id=who.team_id,
            )
        except (AccessDenied, UsageError, CodeStreamError) as exc:
            message = render_usage_error(exc) if isinstance(exc, UsageError) else render_error(exc)
            await self.context.answer(interaction, message)
            return
        except Exception:
            log.exception("mute failed")
            await self.context.answer(interaction, render_error(StoreUnavailable()))
            return
        alert = interaction.alert
        said = render_muted(mutes.describe(record), duration=duration, actor_id=who.actor.user_id, mute_id=record.id)
        if alert is not None:
            await self.delivery.post(alert.channel, said, thread_ts=alert.thread_ts)
        else:
            await self.context.answer(interaction, said)

    async def show(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        """Only the mutes of what the caller may see (the policy's show rules, and the workspace)."""
        viewer = await self.context.viewer(interaction)
        now = datetime.now(UTC)
        rows = [
            (m.id or 0, mutes.describe(m), None if m.until_pass else m.until, m.muted_by, m.suppressed)
            for m in await self.muting.visible(viewer, now)
        ]
        return render_mutes(rows, now=now)

    async def end(self, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
        if len(invocation.args) != 1 or not invocation.args[0].lstrip("#").isdigit():
            return render_usage_error(UsageError("Usage: `/codestream unmute <n>` (`/codestream mutes` lists them)."))
        mute_id = int(invocation.args[0].lstrip("#"))
        who = await self.context.who(interaction)
        try:
            record = await self.muting.unmute(
                mute_id, who.actor, channel_id=interaction.channel_id, team_id=who.team_id
            )
        except UsageError as exc:
            return render_usage_error(exc)
        except AccessDenied as exc:
            return render_error(exc)
        return render_unmuted(mutes.describe(record), actor_id=who.actor.user_id)  # to the caller; audited
