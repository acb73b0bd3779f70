"""``/codestream ...``"""

from __future__ import annotations

from typing import Any, Final

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.errors import UsageError
from bot.slack.parse import parse_command
from bot.slack.render.messages import render_help, render_usage_error
from bot.slack.surfaces import Surfaces

COMMAND: Final = "/codestream"


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    @app.command(COMMAND)
    async def codestream_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, request: AsyncBoltRequest
    ) -> None:
        # Parsing is pure and instant, so usage errors and help go back in the ack itself:
        # ephemeral, and Code Stream is never called.
        try:
            parsed = parse_command(str(command.get("text") or ""))
        except UsageError as exc:
            await ack(**_ephemeral(render_usage_error(exc)))
            return
        if parsed.command == "help":
            await ack(**_ephemeral(render_help()))
            return
        await ack()
        if not await surfaces.accepted_once(request.headers):
            return
        await surfaces.command(
            parsed,
            user_id=str(command.get("user_id") or ""),
            user_name=command.get("user_name"),
            channel_id=command.get("channel_id"),
            surface="slash",
            respond=respond,
            team_id=command.get("user_team_id") or command.get("team_id"),
        )


def _ephemeral(message: Any) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}
