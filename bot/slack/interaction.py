"""One Slack interaction, read once from its payload: who asked, from which workspace, where,
how, and where to answer. Listeners build it; everything after the ack takes it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.core.requests import MessageRef, Surface
from bot.slack.delivery import Respond


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Interaction:
    user_id: str
    surface: Surface
    channel_id: str | None = None
    user_name: str | None = None  # the payload's name hint; users.info is asked for the real one
    team_id: str | None = None  # the person's workspace, as the payload says it (a hint)
    thread_ts: str | None = None  # answer in this thread
    respond: Respond | None = None  # the response_url, when the payload has one
    alert: MessageRef | None = None  # the alert message a button or thread reply acts on
    trigger_id: str | None = None  # a button's: opens a modal (valid for 3 s)

    @classmethod
    def from_command(cls, command: Mapping[str, Any], respond: Respond | None) -> Interaction:
        """A slash command's form fields."""
        return cls(
            user_id=_str(command.get("user_id")) or "",
            surface="slash",
            channel_id=_str(command.get("channel_id")),
            user_name=_str(command.get("user_name")),
            team_id=_str(command.get("user_team_id")) or _str(command.get("team_id")),
            respond=respond,
            trigger_id=_str(command.get("trigger_id")),
        )

    @classmethod
    def from_block_action(cls, body: Mapping[str, Any]) -> Interaction:
        """A button on one of our messages; ``alert`` is that message (when Slack says which)."""
        user, container, message = _get(body, "user"), _get(body, "container"), _get(body, "message")
        channel = _str(_get(body, "channel").get("id")) or _str(container.get("channel_id"))
        message_ts = _str(message.get("ts")) or _str(container.get("message_ts"))
        alert = None
        if channel is not None and message_ts is not None:
            alert = MessageRef(channel, message_ts, _str(message.get("thread_ts")) or message_ts)
        return cls(
            user_id=_str(user.get("id")) or "",
            surface="button",
            channel_id=channel,
            user_name=_str(user.get("username")) or _str(user.get("name")),
            team_id=_str(user.get("team_id")) or _str(_get(body, "team").get("id")),
            thread_ts=alert.thread_ts if alert is not None else None,
            alert=alert,
            trigger_id=_str(body.get("trigger_id")),
        )

    @classmethod
    def from_view_submission(cls, body: Mapping[str, Any]) -> Interaction:
        """A submitted modal: who submitted it (the modal itself says what it is about)."""
        user = _get(body, "user")
        return cls(
            user_id=_str(user.get("id")) or "",
            surface="button",
            user_name=_str(user.get("username")) or _str(user.get("name")),
            team_id=_str(user.get("team_id")) or _str(_get(body, "team").get("id")),
        )

    @classmethod
    def from_workflow_step(cls, body: Mapping[str, Any], inputs: Mapping[str, Any]) -> Interaction:
        """A workflow step (``function_executed``): the person is its ``user`` input, the
        workflow's invoking user (``slack#/types/user_context``: ``{"id": …}``, or a user id)."""
        user = inputs.get("user")
        user_id = _str(user.get("id")) if isinstance(user, Mapping) else _str(user)
        return cls(user_id=user_id or "", surface="workflow", team_id=_str(body.get("team_id")))

    @classmethod
    def from_event(cls, event: Mapping[str, Any], surface: Surface) -> Interaction:
        """A message or app_mention event (Events API)."""
        return cls(
            user_id=_str(event.get("user")) or "",
            surface=surface,
            channel_id=_str(event.get("channel")),
            team_id=_str(event.get("user_team")) or _str(event.get("team")),
            thread_ts=_str(event.get("thread_ts")),
        )

    def on(self, alert: MessageRef) -> Interaction:
        """The same interaction, acting on ``alert`` (a thread reply once its alert is known)."""
        return replace(self, channel_id=alert.channel, thread_ts=alert.thread_ts, respond=None, alert=alert)
