"""The long-lived pieces of a running bot, built once from Settings and closed once."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

from bot.access import AccessPolicy, AllowEveryone
from bot.actions import Actions
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.config import Settings
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
    replica: str = field(default_factory=replica_id)

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()


async def build_runtime(
    settings: Settings,
    *,
    client: CodeStreamClient | None = None,
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> Runtime:
    store = await open_store(settings.bot_database_url)
    client = client or CodeStreamClient.from_settings(settings, retry=retry)
    actions = Actions(
        client=client,
        store=store,
        execution_url=settings.execution_ui_url,
        dedupe_seconds=settings.bot_dedupe_seconds,
        access=access or AllowEveryone(),
    )
    return Runtime(settings=settings, client=client, store=store, actions=actions)
