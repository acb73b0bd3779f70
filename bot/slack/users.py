"""Who a Slack user is, for access checks, audit rows and messages: ``users.info`` with a short
cache (display name, and the workspace the person belongs to).

Single-flight: while one look-up of a person is in flight, every other asking for the same
person waits for its answer instead of sending another (a burst of 100 clicks by 3 people is
3 ``users.info`` calls, not one per click)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
_MAX_ENTRIES: Final = 5000


@dataclass(frozen=True)
class UserInfo:
    name: str | None
    team_id: str | None  # the person's home workspace (a Slack Connect guest's is another one)
    email: str | None = None  # profile.email, with the users:read.email scope (approvals)


class UserDirectory:
    def __init__(self, web: AsyncWebClient, *, ttl: float = 600.0) -> None:
        self._web = web
        self._ttl = ttl
        self._cache: dict[str, tuple[UserInfo, float]] = {}
        self._in_flight: dict[str, asyncio.Task[UserInfo | None]] = {}

    async def name(self, user_id: str, fallback: str | None = None) -> str | None:
        info = await self.lookup(user_id)
        return (info.name if info is not None else None) or fallback

    async def lookup(self, user_id: str) -> UserInfo | None:
        """None when Slack could not say (the caller decides what that means)."""
        cached = self._cache.get(user_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        task = self._in_flight.get(user_id)
        if task is None:  # the look-up is a task of its own: a caller cancelled does not cancel it
            task = asyncio.create_task(self._fetch(user_id), name=f"users.info {user_id}")
            self._in_flight[user_id] = task
            task.add_done_callback(lambda _: self._in_flight.pop(user_id, None))
        return await asyncio.shield(task)

    async def _fetch(self, user_id: str) -> UserInfo | None:
        try:
            reply = await self._web.users_info(user=user_id)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("users.info failed", extra={"user_id": user_id, "error_class": type(exc).__name__})
            return None
        user: dict[str, Any] = reply.get("user") or {}
        profile: dict[str, Any] = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name")
        team = user.get("team_id") or profile.get("team")
        email = profile.get("email")
        info = UserInfo(
            name=name if isinstance(name, str) and name else None,
            team_id=team if isinstance(team, str) and team else None,
            email=email if isinstance(email, str) and email else None,
        )
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()  # bounded memory; a refill costs one users.info per active user
        self._cache[user_id] = (info, time.monotonic() + self._ttl)
        return info
