"""The long-lived pieces of a running bot, built once from Settings and closed once."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.access import AccessPolicy, build_policy
from bot.actions import Actions
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.config import Settings, secret_values
from bot.fileconfig import FileConfig, load_file_config
from bot.followup import FollowupTracker
from bot.health import InFlight
from bot.logs import redact
from bot.store import Store, open_store

log = logging.getLogger(__name__)


def replica_id() -> str:
    """Identifies this process in leases and claims: host name and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Runtime:
    settings: Settings
    client: CodeStreamClient
    store: Store
    actions: Actions
    access: AccessPolicy
    web: AsyncWebClient | None = None  # the one Slack Web API client, when Slack is configured
    file_config: FileConfig = field(default_factory=FileConfig)  # BOT_CONFIG: routes and access rules
    inflight: InFlight = field(default_factory=InFlight)  # Slack interactions being worked on
    followups: FollowupTracker | None = None  # follows new executions; set when Slack is configured
    replica: str = field(default_factory=replica_id)

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()
        session = getattr(self.web, "session", None)
        if session is not None:
            await session.close()


async def build_runtime(
    settings: Settings,
    *,
    client: CodeStreamClient | None = None,
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> Runtime:
    from bot.slack.app import build_web_client
    from bot.slack.usergroups import SlackGroupDirectory

    redact.add_secrets(secret_values(settings))  # every log line, from here on, hides them
    web = build_web_client(settings) if settings.slack_configured else None
    file_config = load_file_config(settings.bot_config)
    if access is None:
        access = build_policy(
            file_config.access,
            allowed_users=settings.bot_allowed_users,
            allowed_usergroups=settings.bot_allowed_usergroups,
            allowed_channels=settings.bot_allowed_channels,
            groups=SlackGroupDirectory(web) if web is not None else None,
        )
    store = await open_store(settings.bot_database_url)
    if client is None:
        client = CodeStreamClient.from_settings(settings, retry=retry, observer=metrics.observe_codestream)
        client.auth.on_login = lambda auth: metrics.TOKEN_REFRESHES.labels(auth).inc()
    actions = Actions(
        client=client,
        store=store,
        execution_url=settings.execution_ui_url,
        dedupe_seconds=settings.bot_dedupe_seconds,
        access=access,
    )
    return Runtime(
        settings=settings,
        client=client,
        store=store,
        actions=actions,
        access=access,
        web=web,
        file_config=file_config,
    )
