"""Mutes from Slack: the alert's overflow menu, ``/codestream mutes`` and ``unmute <n>``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EventKind, as_kind
from bot.core import mutes
from bot.core.access import Scope
from bot.core.commands import Invocation
from bot.core.errors import AccessDenied, StoreUnavailable, UsageError
from bot.core.mutes import MuteAsked, MuteScope
from bot.core.requests import Actor
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_error, render_usage_error
from bot.slack.render.mute import render_muted, render_mutes, render_unmuted
from bot.slack.surfaces import Surfaces

log = logging.getLogger(__name__)


async def _actor(surfaces: Surfaces, interaction: Interaction) -> tuple[Actor, str | None]:
    return await surfaces.actor(interaction)


async def mute_from_alert(
    surfaces: Surfaces, interaction: Interaction, kind: EventKind, event_id: str, scope: MuteScope, duration: str
) -> None:
    """The overflow menu's choice: mute, say so in the alert's thread; a refusal to the person."""
    async with surfaces.working():
        actor, team = await _actor(surfaces, interaction)
        try:
            event = await surfaces.client.get_event(kind, event_id)
            record = await mutes.mute(
                surfaces.store,
                surfaces.access,
                MuteAsked(event, scope, duration, actor, "button", interaction.channel_id, team),
            )
        except (AccessDenied, UsageError, CodeStreamError) as exc:
            message = render_usage_error(exc) if isinstance(exc, UsageError) else render_error(exc)
            await surfaces.answer(interaction, message)
            return
        except Exception:
            log.exception("mute failed")
            await surfaces.answer(interaction, render_error(StoreUnavailable()))
            return
        alert = interaction.alert
        said = render_muted(mutes.describe(record), duration=duration, actor_id=actor.user_id, mute_id=record.id)
        if alert is not None:
            await surfaces.delivery.post(alert.channel, said, thread_ts=alert.thread_ts)
        else:
            await surfaces.answer(interaction, said)


async def list_mutes(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage:
    """Only the mutes of what the caller may see (the policy's show rules, and the workspace)."""
    viewer = await surfaces.viewer(interaction)
    now = datetime.now(UTC)
    rows: list[tuple[int, str, datetime | None, str, int]] = []
    for m in await surfaces.store.mutes.active(now):
        kind = as_kind(m.kind) or "git"
        if await surfaces.access.may_see(viewer, Scope(kind, m.project, m.pipeline)):
            rows.append((m.id or 0, mutes.describe(m), None if m.until_pass else m.until, m.muted_by, m.suppressed))
    return render_mutes(rows, now=now)


async def end_mute(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
    if len(invocation.args) != 1 or not invocation.args[0].lstrip("#").isdigit():
        return render_usage_error(UsageError("Usage: `/codestream unmute <n>` (`/codestream mutes` lists them)."))
    mute_id = int(invocation.args[0].lstrip("#"))
    actor, team = await _actor(surfaces, interaction)
    try:
        record = await mutes.unmute(
            surfaces.store, surfaces.access, mute_id, actor, channel_id=interaction.channel_id, team_id=team
        )
    except UsageError as exc:
        return render_usage_error(exc)
    except AccessDenied as exc:
        return render_error(exc)
    return render_unmuted(mutes.describe(record), actor_id=actor.user_id)  # to the caller; audited
