"""``/codestream ...``"""

from __future__ import annotations

from typing import Any, Final

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.errors import UsageError
from bot.slack.commands import COMMANDS, SLASH_COMMAND
from bot.slack.interaction import Interaction
from bot.slack.render.messages import SlackMessage, render_usage_error
from bot.slack.surfaces import Surfaces

COMMAND: Final = SLASH_COMMAND


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    @app.command(COMMAND)
    async def codestream_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, request: AsyncBoltRequest
    ) -> None:
        # Parsing is pure and instant, so usage errors and help go back in the ack itself:
        # ephemeral, and Code Stream is never called.
        try:
            record, invocation = COMMANDS.parse(str(command.get("text") or ""))
        except UsageError as exc:
            await ack(**_ephemeral(render_usage_error(exc)))
            return
        interaction = Interaction.from_command(command, respond)
        if record.instant:  # pure: answered in the ack
            message = await record.handler(surfaces, interaction, invocation)
            await ack(**_ephemeral(message) if message is not None else {})
            return
        await ack()
        surfaces.after_ack(request.headers, interaction, lambda: surfaces.run(record, interaction, invocation))


def _ephemeral(message: SlackMessage) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}
