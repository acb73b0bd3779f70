"""Housekeeping every replica does now and then (``purge_every``): intents left claimed without
an open action get the ending their action had; expired claims (dedupe windows, seen Slack
signatures), dead replicas' heartbeats and, with a retention set, old audit rows are purged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.core.intents import INTENT_PREFIX
from bot.store import Store

log = logging.getLogger("bot.core.reconcile")


class Housekeeping:
    def __init__(
        self, store: Store, *, stuck_after: float, purge_every: float, dedupe_seconds: float, retention_days: float
    ) -> None:
        self.store = store
        self.stuck_after = stuck_after
        self.purge_every = purge_every
        self.dedupe_seconds = dedupe_seconds
        self.retention = timedelta(days=retention_days) if retention_days > 0 else None
        self._next_purge: datetime | None = None

    async def release_orphaned_claims(self, now: datetime) -> None:
        """An intent claimed in flight whose action is no longer open (the process died between
        the claim and the audit row, or a claim write after the outcome failed): give it the
        ending its action had. Without a row nothing was sent (the row precedes the POST)."""
        stale = now - timedelta(seconds=self.stuck_after)
        in_flight = now + timedelta(days=1)  # far beyond any dedupe window
        held = await self.store.claims.in_flight(INTENT_PREFIX, claimed_before=stale, expiring_after=in_flight)
        for claim in held:
            rows = await self.store.actions.by_request(claim.holder)
            if any(r.in_flight for r in rows):
                continue  # the open action is reconciled; it settles the claim
            if any(r.status in ("started", "unknown") for r in rows):
                await self.store.claims.settle(claim.key, claim.holder, self.dedupe_seconds)
            else:
                await self.store.claims.release(claim.key, claim.holder)
            log.warning("released an intent left claimed without an open action", extra={"claim": claim.key})

    async def maybe_run(self, now: datetime) -> None:
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + timedelta(seconds=self.purge_every)
        try:
            await self.release_orphaned_claims(now)
            claims = await self.store.claims.purge_expired()
            replicas = await self.store.liveness.purge_replicas(now - timedelta(days=1))
            audit = await self.store.actions.purge(now - self.retention) if self.retention is not None else 0
        except Exception:
            log.warning("purge failed; trying again later", exc_info=True)
            return
        if claims or replicas or audit:
            log.info("purged expired rows", extra={"claims": claims, "replicas": replicas, "actions": audit})
