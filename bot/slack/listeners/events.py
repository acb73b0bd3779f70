"""Thread replies on alerts (``rerun`` / ``resume`` / ``status``) and @mentions. Bolt acks
events itself; each is taken once (its ``event_id``) before anything is done."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.slack.commands import COMMANDS
from bot.slack.interaction import Interaction
from bot.slack.listeners.commands import run
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.parse import parse_thread_reply, strip_mention

# The manifest subscriptions that deliver the events below.
MANIFEST_BOT_EVENTS: Final = ("app_mention", "message.channels", "message.groups")

# Message subtypes that are a person writing; everything else (edits, joins, bot posts...) is
# acknowledged and ignored, so Slack does not retry it.
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast"})


async def on_message(handlers: Handlers, args: AsyncArgs) -> None:
    """A reply in one of our alerts' threads naming a verb; people talking are left alone."""
    event, bot_user_id = args.event or {}, args.context.bot_user_id
    if event.get("subtype") not in _HUMAN_SUBTYPES or event.get("bot_id"):
        return
    thread_ts, ts = event.get("thread_ts"), event.get("ts")
    if not thread_ts or thread_ts == ts:
        return  # not a reply in a thread
    text = str(event.get("text") or "")
    if bot_user_id and f"<@{bot_user_id}" in text:
        return  # app_mention delivers this one; handling both would double the answer
    verb = parse_thread_reply(text, bot_user_id)
    if verb is None:
        return  # people talking
    reply = Interaction.from_event(event, "thread")
    event_id = args.body.get("event_id")
    await handlers.context.start(
        None, args.request, reply, lambda: handlers.actions.on_thread_reply(verb, reply), event_id=event_id
    )


async def on_mention(handlers: Handlers, args: AsyncArgs) -> None:
    """@codestream-bot: a verb replied in an alert's thread, else a command, as after ``/codestream``."""
    event, bot_user_id = args.event or {}, args.context.bot_user_id
    if event.get("bot_id"):
        return
    text = str(event.get("text") or "")
    interaction = Interaction.from_event(event, "mention")
    thread_ts = interaction.thread_ts
    in_thread = bool(thread_ts) and thread_ts != event.get("ts")
    verb = parse_thread_reply(text, bot_user_id) if in_thread else None
    reply = Interaction.from_event(event, "thread")

    async def mentioned() -> None:
        if verb is not None:  # a verb replied in a thread, as without the mention
            await handlers.actions.on_thread_reply(verb, reply)
            return
        record, invocation = COMMANDS.parse(strip_mention(text, bot_user_id))  # UsageError: said
        await run(handlers, record, interaction, invocation)

    await handlers.context.start(None, args.request, interaction, mentioned, event_id=args.body.get("event_id"))


#: The Bolt events they take (Bolt acks events itself).
EVENTS: Final[Mapping[str, Listener]] = {"message": on_message, "app_mention": on_mention}
REGISTERED_EVENTS: Final = tuple(EVENTS)
