"""The ``followups`` lease: one replica polls at a time, so the poll budget is global and every
status change is shown once. Bookkeeping is on the monotonic clock; the lease lives in the store."""

from __future__ import annotations

import logging
import time
from typing import Final

from bot.core import metrics
from bot.core.followup.timing import FollowupTiming
from bot.store import Store
from bot.store.store import HolderGone

log = logging.getLogger("bot.core.followup")

LEASE_NAME: Final = "followups"


class NotLeader(Exception):
    """The lease moved to another replica: leave the tracker to it."""


class Leadership:
    def __init__(self, store: Store, holder: str, timing: FollowupTiming, holder_gone: HolderGone | None) -> None:
        self.store = store
        self.holder = holder
        self.timing = timing
        self.holder_gone = holder_gone  # a dead holder's lease is taken over at once
        self._leader_until = 0.0
        self._next_renewal = 0.0
        self._next_attempt = 0.0

    @property
    def is_leader(self) -> bool:
        """Whether this replica held the lease at its last check."""
        return self._leader_until > time.monotonic()

    def retry_delay(self) -> float:
        """While another replica leads: how long until the next attempt to take over."""
        return max(0.01, min(self._next_attempt - time.monotonic(), self.timing.lease_ttl))

    async def lead(self) -> bool:
        """Hold the lease: take it when free, renew it every ttl/3."""
        mono = time.monotonic()
        leader = self._leader_until > mono
        if leader and mono < self._next_renewal:
            return True
        if not leader and mono < self._next_attempt:
            return False
        ttl = self.timing.lease_ttl
        try:
            held = await self.store.liveness.acquire_lease(LEASE_NAME, self.holder, ttl, holder_gone=self.holder_gone)
        except Exception as exc:
            # The store is unreachable: keep going only while our lease surely still holds.
            log.warning("follow-up lease check failed", exc_info=True, extra={"error_class": type(exc).__name__})
            self._next_attempt = mono + min(ttl / 3, self.timing.idle * 5)
            self._next_renewal = self._next_attempt
            return leader
        await self._report_active()
        if held:
            if not leader:
                log.info("following executions on this replica", extra={"holder": self.holder})
            self._leader_until = mono + ttl * 0.9  # a margin for the time the call took
            self._next_renewal = mono + ttl / 3
        else:
            if leader:
                log.warning("another replica took over the follow-ups", extra={"holder": self.holder})
            self._leader_until = 0.0
            self._next_attempt = mono + ttl / 3
        return held

    async def fence(self) -> None:
        """Before a Slack write: make sure no other replica has taken over meanwhile."""
        if not await self.store.liveness.renew_lease(LEASE_NAME, self.holder, self.timing.lease_ttl):
            self._leader_until = 0.0
            self._next_attempt = time.monotonic() + self.timing.lease_ttl / 3
            raise NotLeader
        mono = time.monotonic()
        self._leader_until = mono + self.timing.lease_ttl * 0.9
        self._next_renewal = mono + self.timing.lease_ttl / 3

    async def release(self) -> None:
        self._leader_until = 0.0
        try:
            await self.store.liveness.release_lease(LEASE_NAME, self.holder)
        except Exception as exc:
            log.warning(
                "could not release the follow-up lease", exc_info=True, extra={"error_class": type(exc).__name__}
            )

    async def _report_active(self) -> None:
        """The active-trackers gauge, refreshed with each lease check (every lease_ttl / 3)."""
        try:
            metrics.ACTIVE_TRACKERS.set(await self.store.followups.active_count())
        except Exception:
            log.debug("could not count active follow-ups", exc_info=True)
