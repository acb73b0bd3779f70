"""User-group membership for access rules, from ``usergroups.users.list``.

Cached with a short TTL; a user missing from a cached list triggers a refresh (at most every
few seconds per group), so someone just added to a group does not wait for the TTL. Any
failure raises GroupLookupFailed, which the policy turns into a denial (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.access import GroupLookupFailed

log = logging.getLogger(__name__)


class SlackGroupDirectory:
    def __init__(self, web: AsyncWebClient, *, ttl: float = 300.0, min_refresh: float = 10.0) -> None:
        self._web = web
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._members: dict[str, tuple[frozenset[str], float]] = {}
        self._handles: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def is_member(self, group_id: str, user_id: str) -> bool:
        cached = self._members.get(group_id)
        now = time.monotonic()
        if cached is not None:
            members, fetched = cached
            if user_id in members and now - fetched < self._ttl:
                return True
            if user_id not in members and now - fetched < self._min_refresh:
                return False
        members = await self._refresh(group_id)
        return user_id in members

    def handle(self, group_id: str) -> str:
        # Plain text, never <!subteam^…>: a denial must not ping the whole group.
        return self._handles.get(group_id, f"user group {group_id}")

    async def _refresh(self, group_id: str) -> frozenset[str]:
        lock = self._locks.setdefault(group_id, asyncio.Lock())
        async with lock:  # one fetch per group at a time; later callers use its result
            cached = self._members.get(group_id)
            if cached is not None and time.monotonic() - cached[1] < self._min_refresh / 10:
                return cached[0]
            try:
                reply = await self._web.usergroups_users_list(usergroup=group_id)
            except Exception as exc:  # noqa: BLE001 - any failure means "cannot tell": deny
                log.warning(
                    "usergroups.users.list failed", extra={"group_id": group_id, "error_class": type(exc).__name__}
                )
                raise GroupLookupFailed(group_id) from None
            users: Any = reply.get("users") or []
            members = frozenset(u for u in users if isinstance(u, str))
            await self._learn_handles()  # before caching: whoever sees the members can name the group
            self._members[group_id] = (members, time.monotonic())
            return members

    async def _learn_handles(self) -> None:
        if self._handles:
            return
        try:
            reply = await self._web.usergroups_list()
        except Exception:  # noqa: BLE001 - names are cosmetic; ids work in messages too
            return
        for group in reply.get("usergroups") or []:
            if isinstance(group, dict) and isinstance(group.get("id"), str) and isinstance(group.get("handle"), str):
                self._handles[group["id"]] = "@" + group["handle"]
