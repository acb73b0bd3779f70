"""``/codestream ...``"""

from __future__ import annotations

from typing import Any, Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.core.commands import Command, Invocation
from bot.core.errors import UsageError
from bot.slack.commands import COMMANDS, SLASH_COMMAND, Handler
from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers
from bot.slack.render.messages import SlackMessage, render_usage_error

COMMAND: Final = SLASH_COMMAND


async def on_command(handlers: Handlers, args: AsyncArgs) -> None:
    command = args.command or {}
    # Parsing is pure and instant, so usage errors and help go back in the ack itself:
    # ephemeral, and Code Stream is never called.
    try:
        record, invocation = COMMANDS.parse(str(command.get("text") or ""))
    except UsageError as exc:
        await args.ack(**_ephemeral(render_usage_error(exc)))
        return
    interaction = Interaction.from_command(command, args.respond)
    if record.instant:  # pure: answered in the ack
        message = await record.handler(handlers.commands)(interaction, invocation)
        await args.ack(**_ephemeral(message) if message is not None else {})
        return
    await handlers.context.start(
        args.ack,
        args.request,
        interaction,
        lambda: run(handlers, record, interaction, invocation),
        behind=not record.opens_form,
    )


async def run(handlers: Handlers, record: Command[Handler], interaction: Interaction, invocation: Invocation) -> None:
    """A parsed command (slash or @mention), through its record's handler."""
    message = await record.handler(handlers.commands)(interaction, invocation)
    if message is not None:
        await handlers.context.answer(interaction, message)


def _ephemeral(message: SlackMessage) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks, "response_type": "ephemeral"}
