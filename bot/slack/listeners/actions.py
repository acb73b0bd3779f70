"""Buttons on alerts and lists: Rerun, Resume, Open execution."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.errors import UsageError
from bot.core.requests import Verb
from bot.slack.render.messages import ACTION_OPEN, ACTION_RERUN, ACTION_RESUME, parse_button_value, render_usage_error
from bot.slack.surfaces import AlertRef, Surfaces

_VERBS: dict[str, Verb] = {ACTION_RERUN: "rerun", ACTION_RESUME: "resume"}


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    async def on_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        await ack()
        if not await surfaces.accepted_once(request.headers):
            return
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        message = body.get("message") or {}
        message_ts = message.get("ts") or (body.get("container") or {}).get("message_ts")
        try:
            kind, event_id = parse_button_value(str(action.get("value") or ""))
        except UsageError as exc:
            if channel:
                await surfaces.delivery.ephemeral(channel, user_id, render_usage_error(exc))
            return
        verb = _VERBS[str(action.get("action_id"))]
        if not channel or not message_ts:
            return  # a button outside a message (cannot happen with our blocks); nothing to update
        alert = AlertRef(channel=channel, ts=message_ts, thread_ts=message.get("thread_ts") or message_ts)
        await surfaces.act_on_alert(
            verb,
            kind,
            event_id,
            user_id=user_id,
            user_name=user.get("username") or user.get("name"),
            surface="button",
            alert=alert,
            team_id=user.get("team_id") or (body.get("team") or {}).get("id"),
        )

    app.action(ACTION_RERUN)(on_button)
    app.action(ACTION_RESUME)(on_button)

    @app.action(ACTION_OPEN)
    async def open_execution(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the URL; the click must still be acknowledged
