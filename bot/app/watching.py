"""Wiring the watcher from Settings, and the webhook that wakes it."""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import Final

from pydantic import SecretStr
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app.settings import Settings
from bot.codestream.client import CodeStreamClient
from bot.core.approvals.ports import ApprovalNotifier
from bot.core.approvals.watcher import ApprovalWatcher
from bot.core.digests import DigestBoard
from bot.core.fileconfig import FileConfig
from bot.core.leases import LeaseHolder
from bot.core.people import AuthorMentions
from bot.core.ports import AlertNotifier
from bot.core.routing import Router
from bot.core.watcher import AlertPolicy, Watcher, WatchTiming
from bot.store import Store
from bot.store.store import HolderGone

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/hooks/codestream"
WEBHOOK_HEADER: Final = "X-Codestream-Bot-Token"
WEBHOOK_MAX_BODY: Final = 64 * 1024


def watch_enabled(settings: Settings, file_config: FileConfig) -> bool:
    """BOT_WATCH wins when set; otherwise on when there is somewhere to send an alert — or may be
    soon: with Slack configured a channel can subscribe at any time (the watcher then idles,
    without a lease or a Code Stream read, until some route can alert)."""
    if settings.bot_watch is not None:
        return settings.bot_watch
    router = Router.from_config(file_config, settings.bot_alert_channel)
    return router.configured or (settings.slack_configured and router.open_to_stored())


def build_watcher(
    settings: Settings,
    file_config: FileConfig,
    *,
    store: Store,
    client: CodeStreamClient,
    notifier: AlertNotifier,
    holder: str,
    holder_gone: HolderGone | None = None,
    authors: AuthorMentions | None = None,
    digests: DigestBoard | None = None,
) -> Watcher | None:
    """The watcher for these settings, or None when watching is off."""
    if not watch_enabled(settings, file_config):
        return None
    router = Router.from_config(file_config, settings.bot_alert_channel)
    if not router.configured and not (settings.slack_configured and router.open_to_stored()):
        log.warning("BOT_WATCH is on but no alert channel is configured: failures will not be alerted")
    elif not router.configured:
        log.info("no alert routes configured: failures are alerted where channels subscribe (/codestream subscribe)")
    return Watcher(
        store,
        client,
        notifier,
        router,
        timing=WatchTiming(settings.bot_watch_interval, settings.bot_watch_lookback, settings.bot_watch_page_size),
        lease=LeaseHolder(holder, holder_gone),
        policy=alert_policy(settings, authors),
        digests=digests,
    )


def alert_policy(settings: Settings, authors: AuthorMentions | None) -> AlertPolicy:
    """How failures become alerts: BOT_REPEAT_WINDOW_HOURS, BOT_UNDELIVERABLE_HOURS, BOT_DIGEST_*,
    and ``authors`` when BOT_MENTION_AUTHOR is on."""
    return AlertPolicy(
        repeat_window=settings.bot_repeat_window_hours * 3600,
        undeliverable_after=settings.bot_undeliverable_hours * 3600,
        digest_threshold=settings.bot_digest_threshold,
        digest_window=settings.bot_digest_window_seconds,
        authors=authors,
    )


def build_approval_watcher(
    settings: Settings,
    file_config: FileConfig,
    *,
    store: Store,
    client: CodeStreamClient,
    notifier: ApprovalNotifier,
    holder: str,
    holder_gone: HolderGone | None = None,
) -> ApprovalWatcher | None:
    """The approvals watcher (BOT_APPROVALS, by default on with the failure watcher), or None."""
    enabled = settings.bot_approvals if settings.bot_approvals is not None else watch_enabled(settings, file_config)
    if not enabled:
        return None
    router = Router.from_config(file_config, settings.bot_alert_channel)
    if not router.configured:
        log.warning("BOT_APPROVALS is on but no channel is configured: approval requests will not be posted")
    return ApprovalWatcher(
        store,
        client,
        notifier,
        router,
        interval=settings.bot_approvals_interval,
        lease=LeaseHolder(holder, holder_gone),
        lookback=settings.bot_watch_lookback,
    )


def webhook_route(watcher: Watcher, token: SecretStr | None) -> Route:
    """``POST /hooks/codestream``: a Code Stream pipeline notification (or anything holding the
    token) makes the watcher poll now. The body is not used; it is only size-checked."""
    expected = token.get_secret_value().encode() if token is not None else None

    async def hook(request: Request) -> Response:
        if expected is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        given = request.headers.get(WEBHOOK_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"error": f"missing or wrong {WEBHOOK_HEADER}"}, status_code=401)
        if not await _body_fits(request, WEBHOOK_MAX_BODY):
            return JSONResponse({"error": "request body too large"}, status_code=413)
        watcher.wake()
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Route(WEBHOOK_PATH, hook, methods=["POST"])


async def _body_fits(request: Request, limit: int) -> bool:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return False
    received = 0
    with contextlib.suppress(ClientDisconnect):
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                return False
    return True
