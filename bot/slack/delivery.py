"""Putting messages in front of people, with fallbacks: a response_url that expired falls back to
the Web API, a channel the bot is not in falls back to the response_url. Never raises: a
delivery problem is logged, and the action's outcome is already recorded in the store."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.pacing import ChannelPacer
from bot.slack.render.messages import SlackMessage

log = logging.getLogger(__name__)

# Bolt's ``respond``: posts to the interaction's response_url.
Respond = Callable[..., Awaitable[Any]]


def _status(reply: Any) -> int:
    return int(getattr(reply, "status_code", 200) or 200)


class Delivery:
    def __init__(self, web: AsyncWebClient, pacer: ChannelPacer | None = None) -> None:
        self.web = web
        self.pacer = pacer or ChannelPacer()  # for the bot's bulk traffic only (``paced=True``)

    async def post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        """chat.postMessage; the new message's ts, or None when Slack refused."""
        ts, _ = await self.post_or_why(channel, message, thread_ts=thread_ts)
        return ts

    async def post_or_why(
        self, channel: str, message: SlackMessage, *, thread_ts: str | None = None, paced: bool = False
    ) -> tuple[str | None, str | None]:
        """(ts, None) when posted, (None, Slack's error code or the failure's class) when not.
        ``paced``: wait for the channel's turn first (alerts and digests, not answers)."""
        if paced:
            await self.pacer.wait(channel)
        reply, why = await self._call_or_why(
            "chat.postMessage",
            channel,
            self.web.chat_postMessage(channel=channel, thread_ts=thread_ts, **message.as_kwargs()),
        )
        ts = reply.get("ts") if reply is not None else None
        if isinstance(ts, str):
            return ts, None
        return None, why or "unknown"

    async def update(self, channel: str, ts: str, message: SlackMessage, *, paced: bool = False) -> bool:
        if paced:
            await self.pacer.wait(channel)
        reply = await self._call(
            "chat.update", channel, self.web.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        )
        return reply is not None

    async def ephemeral(
        self,
        channel: str | None,
        user: str,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        respond: Respond | None = None,
    ) -> bool:
        """Only ``user`` sees it: through the response_url when there is one, else the Web API."""
        if respond is not None and await self._respond(respond, message, response_type="ephemeral"):
            return True
        if channel is None:
            return False
        call = self.web.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, text=message.text, blocks=message.blocks
        )
        return await self._call("chat.postEphemeral", channel, call) is not None

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> bool:
        """A modal, for the person whose click gave ``trigger_id`` (valid for 3 s)."""
        return await self._call("views.open", "-", self.web.views_open(trigger_id=trigger_id, view=view)) is not None

    async def _call(self, method: str, channel: str, call: Awaitable[Any]) -> Any | None:
        """Await a Web API call; on any failure log one line and return None."""
        reply, _ = await self._call_or_why(method, channel, call)
        return reply

    async def _call_or_why(self, method: str, channel: str, call: Awaitable[Any]) -> tuple[Any | None, str | None]:
        """(reply, None), or (None, Slack's error code / the failure's class) after one log line."""
        try:
            return await call, None
        except SlackApiError as exc:
            why = _error(exc)
            log.warning("%s failed", method, extra={"channel_id": channel, "slack_error": why})
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            why = type(exc).__name__
            log.warning("%s failed", method, extra={"channel_id": channel, "error_class": why})
        return None, why

    async def public(
        self,
        channel: str | None,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        respond: Respond | None = None,
    ) -> str | None:
        """Everyone in the channel sees it. Returns its ts when posted through the Web API (so it
        can be updated later); falls back to an in_channel response (no ts) when the bot may not
        post in that channel."""
        if channel is not None:
            ts = await self.post(channel, message, thread_ts=thread_ts)
            if ts is not None:
                return ts
        if respond is not None:
            await self._respond(respond, message, response_type="in_channel")
        return None

    async def _respond(self, respond: Respond, message: SlackMessage, *, response_type: str) -> bool:
        try:
            reply = await respond(
                text=message.text, blocks=message.blocks, response_type=response_type, replace_original=False
            )
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            log.warning("response_url post failed", extra={"error_class": type(exc).__name__})
            return False
        if _status(reply) != 200:
            log.warning("response_url refused (expired?)", extra={"status": _status(reply)})
            return False
        return True


def _error(exc: SlackApiError) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return str(response.get("error", "unknown"))
        except Exception:  # noqa: BLE001 - reported, never raised
            return "unknown"
    return "unknown"
