"""``/codestream whoami``: which actions the access policy lets the caller take here (on which
projects and pipelines), and which only in other channels — for people and for operators
debugging their rules."""

from __future__ import annotations

from bot.core.commands import Invocation
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.whoami import render_whoami
from bot.slack.surfaces import Surfaces


async def whoami(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage:
    viewer = await surfaces.viewer(interaction)
    grants = await surfaces.access.grants(viewer)
    return render_whoami(grants, user_id=viewer.user_id, channel_id=viewer.channel_id)
