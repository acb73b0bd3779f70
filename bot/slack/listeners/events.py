"""Thread replies on alerts (``rerun`` / ``resume`` / ``status``) and @mentions."""

from __future__ import annotations

import logging
from typing import Any, Final

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.errors import StoreUnavailable, UsageError
from bot.core.verbs import Verb
from bot.slack.commands import COMMANDS
from bot.slack.digests import thread_answer
from bot.slack.interaction import Interaction
from bot.slack.parse import parse_thread_reply, strip_mention
from bot.slack.render.messages import render_error, render_usage_error
from bot.slack.surfaces import Surfaces

log = logging.getLogger(__name__)

# The Bolt events registered below, and the manifest subscriptions that deliver them.
MANIFEST_BOT_EVENTS: Final = ("app_mention", "message.channels", "message.groups")
REGISTERED_EVENTS: Final = ("message", "app_mention")

# Message subtypes that are a person writing; everything else (edits, joins, bot posts...) is
# acknowledged and ignored, so Slack does not retry it.
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast"})


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    @app.event("message")
    async def on_message(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext, request: AsyncBoltRequest
    ) -> None:
        if event.get("subtype") not in _HUMAN_SUBTYPES or event.get("bot_id"):
            return
        thread_ts, ts = event.get("thread_ts"), event.get("ts")
        if not thread_ts or thread_ts == ts:
            return  # not a reply in a thread
        text = str(event.get("text") or "")
        if context.bot_user_id and f"<@{context.bot_user_id}" in text:
            return  # app_mention delivers this one; handling both would double the answer
        verb = parse_thread_reply(text, context.bot_user_id)
        if verb is None or not await surfaces.first_delivery(body.get("event_id")):
            return  # people talking, or Slack re-delivering an event already being handled
        if not await surfaces.accepted_once(request.headers):
            return
        await _thread_action(surfaces, event, verb)

    @app.event("app_mention")
    async def on_mention(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext, request: AsyncBoltRequest
    ) -> None:
        if event.get("bot_id") or not await surfaces.first_delivery(body.get("event_id")):
            return
        if not await surfaces.accepted_once(request.headers):
            return
        text = str(event.get("text") or "")
        interaction = Interaction.from_event(event, "mention")
        thread_ts = interaction.thread_ts
        if thread_ts and thread_ts != event.get("ts"):
            verb = parse_thread_reply(text, context.bot_user_id)
            if verb is not None:
                await _thread_action(surfaces, event, verb)
                return
        try:
            record, invocation = COMMANDS.parse(strip_mention(text, context.bot_user_id))
        except UsageError as exc:
            if interaction.channel_id:
                await surfaces.answer(interaction, render_usage_error(exc))
            return
        await surfaces.run(record, interaction, invocation)


async def _thread_action(surfaces: Surfaces, event: dict[str, Any], verb: Verb) -> None:
    channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
    target = await surfaces.alert_for_thread(channel, thread_ts)
    if target is None:
        return  # a thread that is not one of our alerts
    kind, event_id, alert = target
    interaction = Interaction.from_event(event, "thread").on(alert)
    board = surfaces.notifier.digests
    try:
        in_digest = board is not None and await board.at(channel, thread_ts) is not None
    except Exception:  # cannot tell whether this thread names one failure: act on none
        log.exception("digest look-up failed; the reply is not acted on")
        await surfaces.answer(interaction, render_error(StoreUnavailable()))
        return
    if in_digest:
        await surfaces.answer(interaction, thread_answer())  # a digest's thread names no one failure
        return
    await surfaces.act_on_alert(verb, kind, event_id, interaction)
