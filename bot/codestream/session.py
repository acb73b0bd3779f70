"""Authenticated requests to the Code Stream API, below the operations of the client.

One bearer token per request (one fresh login and one resend after a 401), the
``apiVersion`` parameter, the response size limit, retries (see ``retry``) and the metrics
hook that sees every exchange. :class:`bot.codestream.client.CodeStreamClient` builds the
Code Stream operations on top.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from bot.codestream.auth import TokenProvider
from bot.codestream.errors import AuthenticationFailed, CodeStreamError
from bot.codestream.retry import RetryPolicy, with_retries
from bot.codestream.transport import (
    ResponseTooLarge,
    TransportFailure,
    error_for_status,
    json_object,
    send,
)

log = logging.getLogger(__name__)

API: Final = "/codestream/api"
#: The API version the bot is written against (sent as ``apiVersion`` on every request).
DEFAULT_API_VERSION: Final = "2019-10-17"

# Observer of every HTTP exchange: (operation, status or error class, seconds). Metrics hook.
RequestObserver = Callable[[str, str, float], None]


@dataclass
class Exchange:
    """One authenticated request, re-buildable for the single retry after a 401."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # sent as JSON (the execution actions' request body)


@dataclass(frozen=True)
class Unanswered:
    """A POST sent at most once that got no clear answer: ``sent`` False, it never left (it
    certainly did not run: safe to try again); True, Code Stream may have applied it (read
    back to find out, never send it again)."""

    error: CodeStreamError
    sent: bool


class ApiSession:
    """The sending half of :class:`~bot.codestream.client.CodeStreamClient`: it sends
    :class:`Exchange` s to one Code Stream over one pooled ``httpx.AsyncClient``. The client's
    constructor sets these attributes."""

    base_url: str
    auth: TokenProvider
    api_version: str
    retry: RetryPolicy
    max_response_bytes: int
    _http: httpx.AsyncClient
    _observer: RequestObserver | None

    background: ApiSession

    async def aclose(self) -> None:
        await self._http.aclose()
        if self.background is not self:
            await self.background.aclose()

    async def _get_json(self, op: str, exchange: Exchange, *, what: str, retry: bool = True) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            response = await self._send_authenticated(op, exchange)
            if response.status_code >= 400:
                raise error_for_status(response, what=what)
            return json_object(response)

        if not retry:
            return await attempt()
        return await with_retries(self.retry, attempt, retry_sent=True)

    async def _send_unsent_retry(self, op: str, exchange: Exchange) -> httpx.Response:
        """Send a POST; retry only failures that happened before the request left."""
        return await with_retries(self.retry, lambda: self._send_authenticated(op, exchange), retry_sent=False)

    async def _post_once(self, op: str, exchange: Exchange, *, what: str) -> httpx.Response | Unanswered:
        """Send a POST that must never run twice: retried only while it surely did not leave. A
        definite refusal (4xx) raises its typed error, about ``what``."""
        try:
            response = await self._send_unsent_retry(op, exchange)
        except ResponseTooLarge as big:
            # Code Stream answered (perhaps 2xx) but too much to read: it may have acted.
            return Unanswered(big, sent=True)
        except TransportFailure as failure:
            # Refused, DNS, connect timeout: not a byte left, so it certainly did not run. Else
            # the request may have reached Code Stream: find out, never post again.
            return Unanswered(failure, sent=failure.request_sent)
        if response.status_code >= 500 or response.status_code == 499:
            # A 500, a proxy's 502/503/504, or 499 (the proxy gave up on Code Stream after
            # forwarding): Code Stream may have applied it.
            return Unanswered(error_for_status(response, what=op), sent=True)
        if response.status_code >= 400:
            raise error_for_status(response, what=what)
        return response

    async def _send_authenticated(self, op: str, exchange: Exchange) -> httpx.Response:
        token = await _login(self.auth.token())
        response = await self._send_once(op, exchange, token)
        if response.status_code == 401:
            # A 401 was refused before any processing, so resending (even a POST) is safe: one
            # fresh login and one retry; a second 401 means the credentials are wrong.
            token = await _login(self.auth.refresh(rejected=token))
            response = await self._send_once(op, exchange, token)
            if response.status_code == 401:
                raise AuthenticationFailed(status=401, server_message=None)
        return response

    async def _send_once(self, op: str, exchange: Exchange, token: str) -> httpx.Response:
        params = {**exchange.params, "apiVersion": self.api_version}
        request = self._http.build_request(
            exchange.method,
            f"{self.base_url}{exchange.path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            json=exchange.body,
        )
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await send(self._http, request, max_bytes=self.max_response_bytes)
            outcome = str(response.status_code)
            return response
        except CodeStreamError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            elapsed = time.perf_counter() - started
            log.debug("codestream %s -> %s in %.3fs", op, outcome, elapsed)
            if self._observer is not None:
                self._observer(op, outcome, elapsed)


async def _login(getting: Awaitable[str]) -> str:
    """A token for the request. A login that failed in transit says nothing about the request
    itself: that one was never sent."""
    try:
        return await getting
    except TransportFailure as failure:
        raise TransportFailure(failure.user_message, request_sent=False) from None
