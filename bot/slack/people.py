"""``users.lookupByEmail`` (scope ``users:read.email``): the core's ``EmailDirectory``."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.people import LookupFailed

log = logging.getLogger(__name__)


class SlackEmailDirectory:
    def __init__(self, web: AsyncWebClient) -> None:
        self._web = web

    async def user_for_email(self, email: str) -> str | None:
        try:
            reply = await self._web.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error == "users_not_found":  # the usual answer for an author outside Slack
                return None
            log.warning("users.lookupByEmail failed; no author mention", extra={"error": error})
            raise LookupFailed(str(error)) from None
        user = reply.get("user") or {}
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not user_id or user.get("deleted") or user.get("is_bot"):
            return None
        return user_id
