"""The buttons of a broken git webhook's alert: **Check again**, and once it works **Rerun the
newest push** / **Rerun all N missed pushes**."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.render.buttons import parse_button_value
from bot.slack.render.webhook_alert import Which


async def on_check_again(handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    value = str((args.action or {}).get("value") or "")

    async def check() -> None:
        kind, event_id = parse_button_value(value)
        await handlers.webhooks.check_again(interaction, kind, event_id)

    await handlers.context.start(args.ack, args.request, interaction, check)


async def on_rerun_missed(which: Which, handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    value = str((args.action or {}).get("value") or "")

    async def rerun() -> None:
        kind, event_id = parse_button_value(value)
        await handlers.webhooks.rerun_missed(interaction, kind, event_id, which)

    await handlers.context.start(args.ack, args.request, interaction, rerun)


#: Their action ids, as render.webhook_alert draws them.
ACTIONS: Final[Mapping[str, Listener]] = {
    "codestream_webhook_check": on_check_again,
    "codestream_webhook_rerun_newest": partial(on_rerun_missed, "newest"),
    "codestream_webhook_rerun_missed": partial(on_rerun_missed, "all"),
}
