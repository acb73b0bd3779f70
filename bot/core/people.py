"""Who to ask: the Slack user behind an event's owner (the person who pushed), so an alert can
mention them. Optional (``BOT_MENTION_AUTHOR``): the ``people:`` map of ``BOT_CONFIG`` (a name
or an e-mail → a Slack user id) first, then Slack's ``users.lookupByEmail`` when Code Stream's
owner carries an e-mail. A lookup that fails or finds nobody means no mention, never an error;
answers are cached (misses too, so an unknown author costs one lookup an hour).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final, Protocol

log = logging.getLogger(__name__)

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ANGLED: Final = re.compile(r"<[^>]*>")
CACHE_SIZE: Final = 4096
CACHE_SECONDS: Final = 3600.0


LOOKUP_SECONDS: Final = 2.0  # the alert waits this long at most for its author


class LookupFailed(Exception):
    """The directory could not answer now (rate limited, down): not cached, asked again later."""


class EmailDirectory(Protocol):
    """Slack's directory by e-mail (implemented by the Slack layer)."""

    async def user_for_email(self, email: str) -> str | None:
        """The Slack user id with this e-mail; None when there is none. Raises LookupFailed (or
        anything) when it cannot tell right now."""
        ...


def owner_keys(owner: str) -> tuple[str | None, str | None]:
    """``"Sam Okafor <sam@example.com>"`` → (``"sam@example.com"``, ``"sam okafor"``)."""
    match = _EMAIL.search(owner)
    email = match.group(0).lower() if match else None
    name = " ".join(_ANGLED.sub(" ", owner).split()).lower()
    if email is not None and name == email:
        name = ""
    return email, name or None


class AuthorMentions:
    def __init__(
        self,
        people: Mapping[str, str],
        directory: EmailDirectory | None,
        *,
        ttl: float = CACHE_SECONDS,
        size: int = CACHE_SIZE,
    ) -> None:
        self.people = {key.strip().lower(): user for key, user in people.items()}
        self.directory = directory
        self.ttl = ttl
        self.size = size
        self.lookups = 0  # users.lookupByEmail calls made (tests, benchmarks)
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    async def user_for(self, owner: str | None) -> str | None:
        """The Slack user id to mention for this owner, or None."""
        if not owner or not owner.strip():
            return None
        email, name = owner_keys(owner[:500])
        for key in (email, name, owner.strip().lower()):
            if key and key in self.people:
                return self.people[key]
        if email is None or self.directory is None:
            return None
        cached = self._cache.get(email)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        self.lookups += 1
        try:
            # Bounded: the alert is posted under its claim; a slow Slack must not hold it.
            user = await asyncio.wait_for(self.directory.user_for_email(email), timeout=LOOKUP_SECONDS)
        except Exception as exc:  # noqa: BLE001 - no mention this time; asked again next time
            log.info("author lookup unavailable; no mention", extra={"error_class": type(exc).__name__})
            return None
        self._cache[email] = (user, now + self.ttl)  # found, or surely nobody: cached
        self._cache.move_to_end(email)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return user
