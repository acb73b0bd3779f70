"""Channel names to ids (``conversations.list``, paged), for settings that accept a name such as
``BOT_ALERT_CHANNEL=#ci-alerts``. Resolved once at start-up and cached."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # settings import CHANNEL_ID: reading them must not load the Slack client
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CHANNEL_ID: Final = re.compile(r"[CG][A-Z0-9]{2,}")  # a public (C) or private (G) channel id

_PAGE: Final = 200
_MAX_PAGES: Final = 100  # 20,000 channels


class ChannelNotFound(Exception):
    """No channel of that name that the bot can see."""


class ChannelDirectory:
    def __init__(self, web: AsyncWebClient) -> None:
        self._web = web
        self._ids: dict[str, str] = {}

    async def resolve(self, name_or_id: str) -> str:
        """The id of ``#name`` / ``name``; an id is returned as it is. Raises ChannelNotFound, or
        the Slack error when the list cannot be read (missing ``channels:read`` scope...)."""
        if CHANNEL_ID.fullmatch(name_or_id):
            return name_or_id
        name = name_or_id.removeprefix("#").lower()
        if name not in self._ids:
            await self._load(name)
        if name not in self._ids:
            raise ChannelNotFound(name)
        return self._ids[name]

    async def _load(self, wanted: str) -> None:
        cursor = ""
        for _ in range(_MAX_PAGES):
            reply = await self._web.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=_PAGE, cursor=cursor or None
            )
            channels: list[dict[str, Any]] = reply.get("channels") or []
            for channel in channels:
                name, cid = channel.get("name"), channel.get("id")
                if isinstance(name, str) and isinstance(cid, str):
                    self._ids[name.lower()] = cid
            if wanted in self._ids:
                return
            cursor = str((reply.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return
