"""HTTP details shared by the token providers and the client: sending one request and mapping
transport failures and status codes to the typed errors in ``errors``."""

from __future__ import annotations

import json
import ssl
from typing import Any, Final

import httpx

from bot.codestream.errors import (
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    CodeStreamError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TLSFailure,
    Unavailable,
)

# Errors raised before any byte of the request left: a retry can never duplicate an action.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)
_MAX_SERVER_MESSAGE: Final = 300


class TransportFailure(Unavailable):
    """No (usable) response. ``request_sent`` says whether the server may have received it."""

    def __init__(self, user_message: str | None = None, *, request_sent: bool) -> None:
        super().__init__(user_message)
        self.request_sent = request_sent


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: The most of one Code Stream answer the bot reads (after decompression), by default.
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024


class ResponseTooLarge(BadResponse):
    default_message = "Code Stream sent an answer larger than the bot reads."


async def send(
    http: httpx.AsyncClient, request: httpx.Request, *, max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
) -> httpx.Response:
    """Send and read the response, at most ``max_bytes`` of it, or raise TransportFailure /
    TLSFailure / ResponseTooLarge (the connection is closed; nothing more is read).

    The exception text names the kind of failure only: request URLs and headers (which hold
    tokens) never reach it.
    """
    try:
        response = await http.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise ResponseTooLarge(
                        f"Code Stream sent an answer larger than {max_bytes / (1024 * 1024):g} MB "
                        "(CODESTREAM_MAX_RESPONSE_MB); the bot did not read the rest.",
                        status=response.status_code,
                    )
        finally:
            await response.aclose()
        response._content = bytes(body)
        return response
    except _NOT_SENT as exc:
        if _is_tls_error(exc):
            raise TLSFailure(
                "TLS verification of Code Stream's certificate failed: set CODESTREAM_CA_BUNDLE to "
                "your CA's certificate file"
            ) from None
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            raise TransportFailure("Timed out connecting to Code Stream.", request_sent=False) from None
        raise TransportFailure("Could not connect to Code Stream.", request_sent=False) from None
    except httpx.TimeoutException:
        raise TransportFailure("Code Stream did not answer in time.", request_sent=True) from None
    except httpx.TransportError:
        raise TransportFailure("The connection to Code Stream broke.", request_sent=True) from None


def server_message(response: httpx.Response) -> str | None:
    """Code Stream's own ``message`` from an error body, if it sent a JSON one (no fixed schema)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        for key in ("message", "errorMessage", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:_MAX_SERVER_MESSAGE]
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare from Code Stream; fall back to our own backoff


def error_for_status(response: httpx.Response, *, what: str) -> CodeStreamError:
    """The typed error for a non-2xx response. ``what`` names the item for the user message."""
    status = response.status_code
    said = server_message(response)
    if status == 401:
        return AuthenticationFailed(status=status, server_message=said)
    if status == 403:
        return Forbidden(status=status, server_message=said)
    if status == 404:
        return NotFound(f"Code Stream has no {what}.", status=status, server_message=said)
    if status == 429:
        return RateLimited(status=status, server_message=said, retry_after=retry_after_seconds(response))
    if status in (502, 503, 504):
        return Unavailable(status=status, server_message=said)
    if status >= 500:
        return ServerError(status=status, server_message=said)
    return BadRequest(status=status, server_message=said)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or BadResponse (garbage, HTML error pages, arrays...)."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "unknown content").split(";")[0]
        raise BadResponse(f"Code Stream sent {kind} where JSON was expected.", status=response.status_code) from None
    if not isinstance(body, dict):
        raise BadResponse("Code Stream sent JSON of an unexpected shape.", status=response.status_code)
    return body
