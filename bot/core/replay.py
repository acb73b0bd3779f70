"""Has this delivery been seen? Slack sends a request again (a retry after a slow ack, a replay,
the same click reaching another replica): the first to claim its key, on any replica, takes it.
The Slack layer names the keys (``bot.slack.replay``); the claims live in the store."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.requests import new_request_id
from bot.store import Store


@dataclass(frozen=True)
class ReplayLedger:
    store: Store

    async def first_seen(self, key: str, seconds: float) -> bool:
        """True the first time ``key`` is seen within ``seconds``, on any replica. Raises when
        the store cannot say (the caller decides whether to go on)."""
        return (await self.store.claims.claim(key, new_request_id(), seconds)).won
