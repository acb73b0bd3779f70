"""One batch of reruns per list at a time, on any replica: a digest's **Rerun all**, a broken
webhook's **Rerun the N missed pushes**. Each rerun's own intent claim is what makes it happen
once; this hold keeps a second click from starting the batch again and answering N times
"already in hand"."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from bot.core.requests import new_request_id
from bot.store import Store

log = logging.getLogger(__name__)

#: How long a hold outlives a process that died holding it.
HOLD_SECONDS: Final = 600.0


@asynccontextmanager
async def batch_hold(store: Store, key: str, user_id: str) -> AsyncIterator[str | None]:
    """Hold ``key`` for the block: yields None when this caller holds it (released after), else
    who holds it ("" when that is not known)."""
    holder = new_request_id()
    claim = await store.claims.claim(key, holder, HOLD_SECONDS, {"user": user_id})
    if not claim.won:
        who = claim.data.get("user")
        yield who if isinstance(who, str) else ""
        return
    try:
        yield None
    finally:
        try:
            await store.claims.release(key, holder)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the hold on %s: %s", key.split(":", 1)[0], type(exc).__name__)
