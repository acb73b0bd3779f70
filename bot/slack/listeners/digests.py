"""A storm digest's row menus (Rerun, Resume, Open execution) and its **Rerun all failed**."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.render.digest import parse_row_value


async def on_digest_row(handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    option = (args.action or {}).get("selected_option") or {}
    value = str(option.get("value") or "")

    async def chosen() -> None:
        row = parse_row_value(value)
        if row is not None:  # None: "Open execution", a link Slack opened
            verb, kind, event_id, listed = row
            await handlers.digests.act_on_row(verb, kind, event_id, listed, interaction)

    await handlers.context.start(args.ack, args.request, interaction, chosen)


async def on_rerun_all(handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    await handlers.context.start(args.ack, args.request, interaction, lambda: handlers.digests.rerun_all(interaction))


#: Their action ids, as render.digest draws them.
ACTIONS: Final[Mapping[str, Listener]] = {
    "codestream_digest_row": on_digest_row,
    "codestream_digest_rerun_all": on_rerun_all,
}
