"""Display names for audit rows and messages, from ``users.info`` with a short cache."""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
_MAX_ENTRIES: Final = 5000


class UserDirectory:
    def __init__(self, web: AsyncWebClient, *, ttl: float = 600.0) -> None:
        self._web = web
        self._ttl = ttl
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def name(self, user_id: str, fallback: str | None = None) -> str | None:
        cached = self._cache.get(user_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0] or fallback
        try:
            reply = await self._web.users_info(user=user_id)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("users.info failed", extra={"user_id": user_id, "error_class": type(exc).__name__})
            return fallback
        user: dict[str, Any] = reply.get("user") or {}
        profile: dict[str, Any] = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name")
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()  # bounded memory; a refill costs one users.info per active user
        self._cache[user_id] = (name if isinstance(name, str) else None, now + self._ttl)
        return name if isinstance(name, str) and name else fallback
