"""The buttons on an alert (and on the App Home and the ``list`` answer): Rerun, Resume, Open
execution, and the mute menu."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.core.verbs import Verb
from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.render.buttons import button_index, parse_button_value
from bot.slack.render.mute import parse_mute_value


async def on_verb_button(verb: Verb, handlers: Handlers, args: AsyncArgs) -> None:
    """On an alert (or a list's row: the same alert path), or on the App Home tab (a view)."""
    # The payload is read once here; the work keeps only what it needs, so the payload is freed
    # while the work waits its turn behind a burst.
    interaction = Interaction.from_block_action(args.body)
    value = str((args.action or {}).get("value") or "")
    from_home = args.body.get("container", {}).get("type") == "view"

    async def click() -> None:
        kind, event_id = parse_button_value(value)
        if interaction.alert is not None:  # its own buttons: one alert, never a digest
            alert = replace(interaction.alert, plain=True)
            await handlers.actions.on_alert(verb, kind, event_id, replace(interaction, alert=alert))
        elif from_home:
            await handlers.home.act(verb, kind, event_id, interaction, listed=button_index(value))
        # otherwise a button outside a message (not ours): nothing to update

    # A value that is not the bot's is said in the channel, not in the alert's thread.
    await handlers.context.start(args.ack, args.request, replace(interaction, thread_ts=None), click)


async def on_open_execution(handlers: Handlers, args: AsyncArgs) -> None:
    await args.ack()  # a link button: Slack opens the URL; the click must still be acknowledged


async def on_mute(handlers: Handlers, args: AsyncArgs) -> None:
    """The alert's ⋯ menu: mute the pipeline or branch for a while."""
    interaction = Interaction.from_block_action(args.body)
    option = (args.action or {}).get("selected_option") or {}
    value = str(option.get("value") or "")

    async def mute() -> None:
        kind, event_id, scope, duration = parse_mute_value(value)
        await handlers.mutes.from_alert(interaction, kind, event_id, scope, duration)

    await handlers.context.start(args.ack, args.request, interaction, mute)


#: Their action ids, as the renderers draw them (render.buttons, render.mute).
ACTIONS: Final[Mapping[str, Listener]] = {
    "codestream_rerun": partial(on_verb_button, "rerun"),
    "codestream_resume": partial(on_verb_button, "resume"),
    "codestream_open_execution": on_open_execution,
    "codestream_mute": on_mute,
}
