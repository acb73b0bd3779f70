"""The Code Stream client as the bot's configuration (``Settings``) describes it."""

from __future__ import annotations

import logging

from bot.app.settings import Settings
from bot.codestream.client import CodeStreamClient, RequestObserver, RetryPolicy
from bot.codestream.factory import create_client

log = logging.getLogger(__name__)


def build_codestream_client(
    settings: Settings,
    *,
    retry: RetryPolicy | None = None,
    observer: RequestObserver | None = None,
) -> CodeStreamClient:
    """Build the client and its one pooled ``httpx.AsyncClient`` from ``Settings``.

    ValueError (the problems joined by "; ") when the settings cannot make a client."""
    problems = settings.codestream_problems()
    if problems:
        raise ValueError("; ".join(problems))
    assert settings.codestream_url is not None  # codestream_problems() requires it
    if not settings.codestream_verify_tls:
        log.warning(
            "CODESTREAM_VERIFY_TLS=false: Code Stream's TLS certificate is NOT verified; "
            "anyone on the network path can read the bot's tokens. Use CODESTREAM_CA_BUNDLE instead."
        )
    return create_client(
        settings.codestream_url,
        auth=settings.codestream_auth,
        refresh_token=settings.codestream_refresh_token,
        token=settings.codestream_token,
        csp_url=settings.codestream_csp_url,
        timeout=settings.codestream_timeout,
        verify_tls=settings.codestream_verify_tls,
        ca_bundle=settings.codestream_ca_bundle,
        api_version=settings.codestream_api_version,
        max_response_bytes=int(settings.codestream_max_response_mb * 1024 * 1024),
        retry=retry,
        observer=observer,
    )
