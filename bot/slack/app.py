"""The Bolt AsyncApp: one Web API client (with rate-limit and server-error retries), the
listeners, and one error handler that maps anything unexpected to a polite message."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.runtime import Runtime
from bot.app.settings import Settings
from bot.core.metrics import CountingRateLimitHandler, MeteredWebClient
from bot.slack import listeners
from bot.slack.delivery import Delivery
from bot.slack.render.messages import SlackMessage
from bot.slack.surfaces import Surfaces
from bot.slack.users import UserDirectory

log = logging.getLogger(__name__)


def build_web_client(settings: Settings) -> AsyncWebClient:
    assert settings.slack_bot_token is not None
    # One aiohttp session for every call: connections are kept alive instead of one per call.
    web = MeteredWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        session=aiohttp.ClientSession(),
    )
    # Waits out 429s (honouring Retry-After) and retries Slack's own 5xx a few times, so a
    # message is delivered late rather than lost.
    web.retry_handlers = [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        CountingRateLimitHandler(max_retry_count=5),
        AsyncServerErrorRetryHandler(max_retry_count=3),
    ]
    return web


def build_app(runtime: Runtime, *, socket_mode: bool) -> tuple[AsyncApp, Surfaces]:
    settings = runtime.settings
    assert runtime.web is not None, "Slack is not configured"
    web = runtime.web
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = AsyncApp(
        client=web,
        signing_secret=secret or "unused-in-socket-mode",
        request_verification_enabled=not socket_mode,
        # Ack first, work after: listeners run once the HTTP response has gone back to Slack.
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )
    delivery = Delivery(web)
    surfaces = Surfaces(runtime, delivery, UserDirectory(web))
    listeners.register(app, surfaces)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Anything a listener did not expect: log it for the operator, tell the person briefly.
        log.error("unhandled error in a listener", exc_info=error, extra={"error_class": type(error).__name__})
        user = (body.get("user") or {}).get("id") or body.get("user_id") or (body.get("event") or {}).get("user")
        channel = (
            (body.get("channel") or {}).get("id")
            or body.get("channel_id")
            or (body.get("event") or {}).get("channel")
        )
        if isinstance(user, str) and isinstance(channel, str):
            message = SlackMessage(
                # Not "please try again": the request may have been an action that ran.
                text=(
                    "⚠️ Something went wrong on the bot's side; it has been logged. If you asked for a rerun "
                    "or resume, check the event with `/codestream show <event>` before asking again."
                ),
                blocks=[],
            )
            await delivery.ephemeral(channel, user, message)

    return app, surfaces
