"""The bot's own identity in Slack (``auth.test``): its workspace, user and bot id. Asked once and
cached; a failure is not cached, so the next caller asks again."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    team_id: str
    user_id: str | None
    bot_id: str | None


class SlackIdentity:
    def __init__(self, web: AsyncWebClient) -> None:
        self._web = web
        self._known: Identity | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Identity | None:
        if self._known is not None:
            return self._known
        async with self._lock:
            if self._known is None:
                self._known = await self._ask()
        return self._known

    async def team_id(self) -> str | None:
        known = await self.get()
        return known.team_id if known is not None else None

    async def _ask(self) -> Identity | None:
        try:
            reply = await self._web.auth_test()
        except Exception as exc:  # noqa: BLE001 - reported; the caller decides (fail closed)
            log.warning("auth.test failed: own workspace unknown for now", extra={"error_class": type(exc).__name__})
            return None
        team = reply.get("team_id")
        if not isinstance(team, str) or not team:
            return None
        user, bot = reply.get("user_id"), reply.get("bot_id")
        return Identity(team, user if isinstance(user, str) else None, bot if isinstance(bot, str) else None)
