"""Cancel / Pause / Resume execution on a followed execution's summary."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.core.verbs import ControlVerb
from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.render.control import parse_control_value


async def on_control_button(verb: ControlVerb, handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    value = str((args.action or {}).get("value") or "")

    async def control() -> None:
        kind, execution_id = parse_control_value(value)
        await handlers.controls.control(verb, execution_id, interaction, kind=kind)

    await handlers.context.start(args.ack, args.request, interaction, control)


#: Their action ids, as the control registry names them (render.control draws them).
ACTIONS: Final[Mapping[str, Listener]] = {
    "codestream_cancel_execution": partial(on_control_button, "cancel"),
    "codestream_pause_execution": partial(on_control_button, "pause"),
    "codestream_resume_execution": partial(on_control_button, "resume-execution"),
}
