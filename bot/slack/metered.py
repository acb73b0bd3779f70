"""The Slack Web API client, counted: calls by method and outcome, and 429 waits."""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.metrics import SLACK_CALLS, SLACK_RATE_LIMIT_WAITS


class CountingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (waits Retry-After), counting each wait."""

    async def prepare_for_next_attempt_async(self, **kwargs: Any) -> None:
        SLACK_RATE_LIMIT_WAITS.inc()
        await super().prepare_for_next_attempt_async(**kwargs)


class MeteredWebClient(AsyncWebClient):
    """AsyncWebClient that counts calls by method and outcome (ok / the Slack error)."""

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            response = await super().api_call(api_method, **kwargs)
        except Exception as exc:
            error = getattr(getattr(exc, "response", None), "get", lambda *_: None)("error")
            SLACK_CALLS.labels(api_method, str(error or type(exc).__name__)).inc()
            raise
        SLACK_CALLS.labels(api_method, "ok").inc()
        return response
