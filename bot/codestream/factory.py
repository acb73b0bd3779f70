"""Build a :class:`CodeStreamClient` with its one pooled ``httpx.AsyncClient`` and its login.

Plain arguments only (the app maps its configuration onto them). A caller with an
``httpx.AsyncClient`` and a token provider of its own constructs the client directly.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Final, Literal, TypeAlias

import httpx
from pydantic import SecretStr

from bot.codestream.auth import (
    CspApiTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    VraRefreshTokenProvider,
)
from bot.codestream.client import CodeStreamClient
from bot.codestream.retry import RetryPolicy
from bot.codestream.session import DEFAULT_API_VERSION, RequestObserver
from bot.codestream.transport import DEFAULT_MAX_RESPONSE_BYTES

#: ``vra``: a vRA on-prem refresh token; ``csp``: a VMware Cloud API token; ``token``: a ready
#: bearer token.
AuthKind: TypeAlias = Literal["vra", "csp", "token"]
#: The VMware Cloud (CSP) console that authorizes API tokens.
DEFAULT_CSP_URL: Final = "https://console.cloud.vmware.com"


@functools.cache
def trusted_cas(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS context for a trust store, built once per process: reading a CA bundle costs about
    25 ms of CPU. ``None``: httpx's default (SSL_CERT_FILE or SSL_CERT_DIR, else certifi)."""
    if ca_bundle is None:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cafile=ca_bundle)


#: Connections for people's actions: as many as the bot works on at once (bot.core.inflight).
INTERACTIVE_CONNECTIONS: Final = 100
#: Connections for the bot's own work (watchers, follow-through, reconciler, health) and logins.
BACKGROUND_CONNECTIONS: Final = 20


def pooled_http(*, timeout: float, verify: ssl.SSLContext | bool = True, connections: int) -> httpx.AsyncClient:
    """A pooled client for Code Stream requests."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        verify=verify,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),  # no churn
        headers={"Accept": "application/json", "User-Agent": "codestream-bot"},
        follow_redirects=False,
    )


def create_client(
    base_url: str,
    *,
    auth: AuthKind = "vra",
    refresh_token: SecretStr | None = None,
    token: SecretStr | None = None,
    csp_url: str = DEFAULT_CSP_URL,
    timeout: float = 30.0,
    verify_tls: bool = True,
    ca_bundle: str | os.PathLike[str] | None = None,
    api_version: str = DEFAULT_API_VERSION,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
) -> CodeStreamClient:
    """A client for the Code Stream at ``base_url`` (the vRA base URL).

    ``auth="vra"`` and ``"csp"`` log in with ``refresh_token`` (for CSP: the API token, at
    ``csp_url``); ``"token"`` sends ``token`` as it is. ``ca_bundle`` is a PEM file of the CAs
    to trust; ``verify_tls=False`` verifies no certificate at all (whatever ``ca_bundle`` says).
    """
    secret = token if auth == "token" else refresh_token
    if secret is None:
        raise ValueError(f"auth={auth!r} needs {'a token' if auth == 'token' else 'a refresh token'}")
    verify: ssl.SSLContext | bool = trusted_cas(None if ca_bundle is None else os.fspath(ca_bundle))
    if not verify_tls:
        verify = False
    # Two pools: people's actions may hold every connection of theirs for minutes (a slow Code
    # Stream); the bot's own reads and its logins never wait behind them.
    background_http = pooled_http(timeout=timeout, verify=verify, connections=BACKGROUND_CONNECTIONS)
    interactive_http = pooled_http(timeout=timeout, verify=verify, connections=INTERACTIVE_CONNECTIONS)
    provider: TokenProvider
    if auth == "token":
        provider = StaticTokenProvider(secret)
    elif auth == "csp":
        provider = CspApiTokenProvider(background_http, csp_url, secret)
    else:
        provider = VraRefreshTokenProvider(background_http, base_url, secret)

    def over(http: httpx.AsyncClient, background: CodeStreamClient | None = None) -> CodeStreamClient:
        return CodeStreamClient(
            base_url,
            provider,
            http=http,
            api_version=api_version,
            retry=retry,
            observer=observer,
            max_response_bytes=max_response_bytes,
            background=background,
        )

    return over(interactive_http, background=over(background_http))
