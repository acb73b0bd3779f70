"""Bearer tokens for Code Stream: vRA on-prem refresh tokens, VMware Cloud (CSP) API tokens, or
a ready token.

Tokens are cached until shortly before they expire; concurrent callers share one login (single
flight), and a 401 leads to exactly one fresh login. The secrets live only in ``SecretStr`` and
in request bodies; they are never logged or put in exception text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx
from pydantic import SecretStr

from bot.codestream.errors import AuthenticationFailed, BadResponse, CodeStreamError, NotFound
from bot.codestream.transport import error_for_status, json_object, send, server_message

log = logging.getLogger(__name__)

# vRA documents login tokens as valid for about 8 hours; used when the token says nothing.
DEFAULT_LIFETIME: Final = 8 * 3600.0
# Refresh this long before expiry (or at 90 % of a short lifetime), so no request carries a
# token that expires in flight.
REFRESH_MARGIN: Final = 300.0


@dataclass(frozen=True)
class _CachedToken:
    value: str
    refresh_at: float  # monotonic


def _claims(token: str) -> dict[str, object]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_account(token: str) -> str | None:
    """The account a JWT names (unverified: only to say who the bot acts as), if readable."""
    claims = _claims(token)
    for name in ("username", "preferred_username", "acct", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return None


def jwt_lifetime(token: str, *, now: float | None = None) -> float | None:
    """Seconds until the JWT's ``exp`` (unverified: only to schedule refreshes), if readable."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        exp = float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    return exp - (time.time() if now is None else now)


class TokenProvider(ABC):
    """Hands out a bearer token; ``refresh(rejected)`` replaces one the server refused."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()
        self.logins = 0
        self.on_login: Callable[[str], None] | None = None  # metrics hook

    def account(self) -> str | None:
        """The account the current token names, once logged in (for messages, never trusted)."""
        cached = self._cached
        return jwt_account(cached.value) if cached is not None else None

    async def token(self) -> str:
        cached = self._cached
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value
        return await self.refresh(rejected=None)

    async def refresh(self, rejected: str | None) -> str:
        """Log in again unless another caller already did while we waited (single flight)."""
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.value != rejected and self._clock() < cached.refresh_at:
                return cached.value
            value, lifetime = await self._login()
            self.logins += 1
            if self.on_login is not None:
                self.on_login(type(self).__name__)
            margin = min(REFRESH_MARGIN, lifetime * 0.1)
            self._cached = _CachedToken(value, self._clock() + max(lifetime - margin, 0.0))
            log.info("codestream login ok", extra={"auth": type(self).__name__, "lifetime_s": int(lifetime)})
            return value

    @abstractmethod
    async def _login(self) -> tuple[str, float]:
        """Return a new token and its lifetime in seconds."""


class StaticTokenProvider(TokenProvider):
    """CODESTREAM_AUTH=token: a ready bearer token; it cannot be refreshed."""

    def __init__(self, token: SecretStr) -> None:
        super().__init__()
        self._token = token

    def account(self) -> str | None:
        """The account the current token names, once logged in (for messages, never trusted)."""
        cached = self._cached
        return jwt_account(cached.value) if cached is not None else None

    async def token(self) -> str:
        return self._token.get_secret_value()

    async def refresh(self, rejected: str | None) -> str:
        if rejected is not None:
            raise AuthenticationFailed("Code Stream rejected CODESTREAM_TOKEN; an operator must set a valid token.")
        return self._token.get_secret_value()

    async def _login(self) -> tuple[str, float]:  # pragma: no cover - never called
        return self._token.get_secret_value(), DEFAULT_LIFETIME


def _login_failed(response: httpx.Response, *, url: str, what: str) -> CodeStreamError:
    status = response.status_code
    said = server_message(response)
    if status == 404:
        return NotFound(
            f"No login endpoint at {url} (HTTP 404): check that CODESTREAM_URL is the vRA base URL.",
            status=status,
            server_message=said,
        )
    if status in (400, 401, 403):
        return AuthenticationFailed(
            f"Code Stream rejected the {what} (HTTP {status}): check CODESTREAM_REFRESH_TOKEN.",
            status=status,
            server_message=said,
        )
    return error_for_status(response, what="login endpoint")


class VraRefreshTokenProvider(TokenProvider):
    """vRA 8 on-prem: ``POST /iaas/api/login {"refreshToken": ...}`` -> ``{"token": ...}``."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, refresh_token: SecretStr) -> None:
        super().__init__()
        self._http = http
        self._url = f"{base_url.rstrip('/')}/iaas/api/login"
        self._refresh_token = refresh_token

    async def _login(self) -> tuple[str, float]:
        request = self._http.build_request(
            "POST", self._url, json={"refreshToken": self._refresh_token.get_secret_value()}
        )
        response = await send(self._http, request)
        if response.status_code != 200:
            raise _login_failed(response, url=self._url, what="refresh token")
        body = json_object(response)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise BadResponse("The vRA login answer had no token.", status=response.status_code)
        return token, jwt_lifetime(token) or DEFAULT_LIFETIME


class CspApiTokenProvider(TokenProvider):
    """vRA Cloud: authorize an API token at the CSP gateway.

    Newer CSP takes the form field ``api_token``; older ones only ``refresh_token``. We try the
    new name first and, if CSP rejects it, the old one, and remember which worked.
    """

    FIELDS: Final = ("api_token", "refresh_token")

    def __init__(self, http: httpx.AsyncClient, csp_url: str, api_token: SecretStr) -> None:
        super().__init__()
        self._http = http
        self._url = f"{csp_url.rstrip('/')}/csp/gateway/am/api/auth/api-tokens/authorize"
        self._api_token = api_token
        self._fields: tuple[str, ...] = self.FIELDS

    async def _login(self) -> tuple[str, float]:
        failure: CodeStreamError | None = None
        for field in self._fields:
            request = self._http.build_request(
                "POST",
                self._url,
                data={field: self._api_token.get_secret_value()},
                headers={"Accept": "application/json"},
            )
            response = await send(self._http, request)
            if response.status_code == 200:
                self._fields = (field,)
                return self._parse(response)
            failure = _login_failed(response, url=self._url, what="API token")
            if response.status_code not in (400, 401, 403):
                break
        assert failure is not None
        raise failure

    @staticmethod
    def _parse(response: httpx.Response) -> tuple[str, float]:
        body = json_object(response)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise BadResponse("The CSP answer had no access_token.", status=response.status_code)
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
        return token, lifetime or jwt_lifetime(token) or DEFAULT_LIFETIME
