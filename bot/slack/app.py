"""The Bolt AsyncApp: one Web API client (with rate-limit and server-error retries), the
listeners, and one error handler that maps anything unexpected to a polite message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import listeners
from bot.slack.delivery import Delivery
from bot.slack.listeners import Handlers
from bot.slack.metered import CountingRateLimitHandler, MeteredWebClient
from bot.slack.render.messages import SOMETHING_WENT_WRONG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackRetry:
    """How the Web API client retries: connection errors and Slack's own 5xx a few times, with
    slack_sdk's exponential back-off (``backoff`` seconds, doubled each time, with jitter); 429s
    are waited out as Slack's Retry-After says. Tests shorten ``backoff``."""

    connection_errors: int = 2
    rate_limited: int = 5
    server_errors: int = 3
    backoff: float = 0.5

    def handlers(self) -> list[AsyncRetryHandler]:
        interval = BackoffRetryIntervalCalculator(backoff_factor=self.backoff)
        return [
            AsyncConnectionErrorRetryHandler(max_retry_count=self.connection_errors, interval_calculator=interval),
            CountingRateLimitHandler(max_retry_count=self.rate_limited),
            AsyncServerErrorRetryHandler(max_retry_count=self.server_errors, interval_calculator=interval),
        ]


def build_web_client(
    token: str,
    *,
    base_url: str,
    before_request: Callable[[], Awaitable[None]] | None = None,
    retry: SlackRetry = SlackRetry(),
) -> AsyncWebClient:
    """``before_request`` is awaited before each HTTP request to Slack (acks first: see
    ``bot.core.foreground``)."""
    trace_configs: list[aiohttp.TraceConfig] = []
    if before_request is not None:
        trace = aiohttp.TraceConfig()

        async def on_request_start(*_: object) -> None:
            await before_request()

        trace.on_request_start.append(on_request_start)
        trace_configs.append(trace)
    # One aiohttp session for every call: connections are kept alive instead of one per call.
    session = aiohttp.ClientSession(trace_configs=trace_configs)
    web = MeteredWebClient(token=token, base_url=base_url, session=session)
    # Waits out 429s (honouring Retry-After) and retries Slack's own 5xx a few times, so a
    # message is delivered late rather than lost.
    web.retry_handlers = retry.handlers()
    return web


def build_app(handlers: Handlers, delivery: Delivery, *, signing_secret: str | None, socket_mode: bool) -> AsyncApp:
    """The Bolt app on the delivery's Web API client, its listeners handing over to ``handlers``;
    requests are verified unless in Socket Mode."""
    web = delivery.web
    secret = signing_secret
    app = AsyncApp(
        client=web,
        signing_secret=secret or "unused-in-socket-mode",
        request_verification_enabled=not socket_mode,
        # Ack first, work after: listeners run once the HTTP response has gone back to Slack.
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )
    listeners.register(app, handlers)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # Anything a listener did not expect: log it for the operator, tell the person briefly.
        log.error("unhandled error in a listener", exc_info=error, extra={"error_class": type(error).__name__})
        user = (body.get("user") or {}).get("id") or body.get("user_id") or (body.get("event") or {}).get("user")
        channel = (
            (body.get("channel") or {}).get("id") or body.get("channel_id") or (body.get("event") or {}).get("channel")
        )
        if isinstance(user, str) and isinstance(channel, str):
            await delivery.ephemeral(channel, user, SOMETHING_WENT_WRONG)

    return app
