"""The watcher's loop: one cycle polls every kind; cycles repeat every ``interval`` or at once
when woken, while this replica holds the ``watcher`` lease (a woken poll runs without it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EventKind
from bot.core import metrics
from bot.core.digests import DigestBoard
from bot.core.leases import LeaseHolder
from bot.core.ports import AlertNotifier
from bot.core.routing import Router
from bot.core.subscriptions import StoredRoutes
from bot.core.waiting import wait_event
from bot.core.watcher.cursor import Cursor, micros_now
from bot.core.watcher.listing import EventLister
from bot.core.watcher.policy import AlertPolicy, WatchTiming
from bot.core.watcher.posting import AlertPosting, alert_key, explain, quietly
from bot.core.watcher.stats import CycleStats, KindStats
from bot.store import Store

log = logging.getLogger("bot.core.watcher")

LEASE: Final = "watcher"
MAX_BACKOFF: Final = 300.0
# After a wake, poll again this soon: the webhook may beat the event's status update.
WAKE_FOLLOW_UP: Final = 5.0
MIN_WAKE_GAP: Final = 0.5  # seconds between woken polls, so a burst of webhooks is one poll
_EXPECTED_ERRORS: Final = (CodeStreamError, SQLAlchemyError, OSError, TimeoutError)


def backoff_delay(failures: int, interval: float, cap: float = MAX_BACKOFF) -> float:
    """Delay after ``failures`` bad cycles in a row: 2x, 4x, ... the interval, capped."""
    if failures <= 0:
        return interval
    return min(max(cap, interval), interval * 2.0 ** min(failures, 30))


class _LeaseLost(Exception):
    pass


class Watcher:
    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        notifier: AlertNotifier,
        router: Router,
        *,
        timing: WatchTiming,
        lease: LeaseHolder,
        policy: AlertPolicy | None = None,
        digests: DigestBoard | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.interval = timing.interval
        self.lookback = timing.lookback
        self.holder = lease.name
        self.holder_gone = lease.gone  # a dead holder's lease is taken over at once
        self.lease_ttl = 3 * timing.interval
        self.kinds: tuple[EventKind, ...] = router.kinds()  # what can alert; again every cycle
        self.subscriptions = StoredRoutes(store)  # channels' own routes, read once a cycle
        self._polled: tuple[EventKind, ...] | None = None  # the kinds of this process's last cycle
        self.lister = EventLister(client, page_size=timing.page_size)
        # The board the Slack side draws row changes with, when given: one sweep for both.
        self.digests = digests or DigestBoard(store, notifier.draw_digest)
        self.posting = AlertPosting(
            store,
            notifier,
            router,
            client,
            policy=policy or AlertPolicy(),
            holder=lease.name,
            keep_lease=self._keep_lease,
            digests=self.digests,
        )
        # What the posting owns, which a cycle uses too.
        self.undelivered = self.posting.undelivered
        self.details = self.posting.details
        self.mutes = self.posting.mutes
        self.storms = self.posting.storms
        self._cursors: dict[EventKind, Cursor] = {}  # valid only while we keep the lease
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lease_renewed = float("-inf")
        self._polling = asyncio.Lock()
        self._last_poll = float("-inf")
        self._last_success = time.monotonic()

    # What this Code Stream accepts: turned off, with a warning, when it answers 400.
    @property
    def use_filter(self) -> bool:
        return self.lister.use_filter

    @use_filter.setter
    def use_filter(self, value: bool) -> None:
        self.lister.use_filter = value

    @property
    def use_orderby(self) -> bool:
        return self.lister.use_orderby

    @use_orderby.setter
    def use_orderby(self, value: bool) -> None:
        self.lister.use_orderby = value

    # -- one cycle ---------------------------------------------------------------------------

    async def poll_once(self, *, force: bool = False) -> CycleStats:
        """Poll every kind once. ``force``: poll even if another replica holds the lease."""
        async with self._polling:  # one cycle at a time per watcher, whoever calls
            return await self._poll_once(force)

    async def _poll_once(self, force: bool) -> CycleStats:
        cpu, wall = time.process_time(), time.perf_counter()
        stats = CycleStats(forced=force)
        reads_before = self.details.reads
        self.posting.begin_cycle()
        self._last_poll = time.monotonic()
        # Subscriptions are routes too: read them once, route by them this cycle, and poll
        # every kind some route can alert on now.
        self.router.use_stored(await self.subscriptions.load())
        self.kinds = self.router.kinds()
        started = self._started_kinds()
        if not self.kinds:  # nothing can alert (yet): no lease, no Code Stream reads
            stats.skipped = True
            return self._finish(stats, cpu, wall, reads_before)
        try:
            leader = await self._take_lease()
        except _EXPECTED_ERRORS as exc:
            stats.error = f"lease: {explain(exc)}"
            leader = False
            if not force:
                return self._finish(stats, cpu, wall, reads_before)
        if not leader and not force:
            stats.skipped = True
            return self._finish(stats, cpu, wall, reads_before)
        try:
            await self.posting.save_unsaved()
        except _EXPECTED_ERRORS as exc:
            stats.error = f"recording posted alerts: {explain(exc)}"
            return self._finish(stats, cpu, wall, reads_before)
        await self.mutes.load()  # one read a cycle: what is muted right now (fails open)
        for kind in started if leader else ():
            # A kind polled again after a pause (a first subscription to it) starts like a first
            # start: the failures of the pause were routed nowhere, they are not alerted now.
            await self._save_cursor(kind, self._fresh_cursor(), leader)
        if leader:
            try:
                stats.reposted = await self.undelivered.retry_due(self.posting.repost, self.store.now())
            except _EXPECTED_ERRORS as exc:
                log.warning("watcher: retrying undelivered alerts failed: %s", explain(exc))
            try:
                await self.digests.redraw_undrawn()  # a digest change Slack missed (reads only then)
            except _EXPECTED_ERRORS as exc:
                log.warning("watcher: redrawing digests failed: %s", explain(exc))
        for kind in self.kinds:
            kind_stats = stats.kinds[kind] = KindStats()
            try:
                await self._poll_kind(kind, kind_stats, leader=leader)
            except _LeaseLost:
                log.info("watcher: lease lost to another replica mid-cycle; it carries on")
                break
            except _EXPECTED_ERRORS as exc:
                kind_stats.error = explain(exc)
                self._cursors.pop(kind, None)
            except Exception as exc:
                kind_stats.error = explain(exc)
                self._cursors.pop(kind, None)
                log.exception("watcher: %s events not polled (unexpected error)", kind)
        return self._finish(stats, cpu, wall, reads_before)

    def _started_kinds(self) -> tuple[EventKind, ...]:
        """Kinds polled now but not in this process's previous cycle (none on its first one:
        after a restart the saved cursors carry on, so nothing is lost)."""
        previous, self._polled = self._polled, self.kinds
        return () if previous is None else tuple(k for k in self.kinds if k not in previous)

    def _fresh_cursor(self) -> Cursor:
        return Cursor(micros_now() - int(self.lookback * 1_000_000))

    def _finish(self, stats: CycleStats, cpu: float, wall: float, reads_before: int = 0) -> CycleStats:
        stats.detail_reads = self.details.reads - reads_before
        stats.cpu_seconds = time.process_time() - cpu
        stats.wall_seconds = time.perf_counter() - wall
        problems = [stats.error] if stats.error else []
        problems += [f"{kind}: {s.error}" for kind, s in stats.kinds.items() if s.error]
        if problems:  # one line per failed cycle; what was done stays done, the rest is retried
            log.warning("watcher: cycle incomplete, will retry: %s", "; ".join(problems))
        for kind, kind_stats in stats.kinds.items():
            if kind_stats.alerts:
                metrics.ALERTS_POSTED.labels(kind).inc(kind_stats.alerts)
        result = "skipped" if stats.skipped else "ok" if stats.healthy and not problems else "error"
        metrics.WATCHER_CYCLES.labels(result).inc()
        if result != "error":
            # A standby replica that skips is healthy too: the leader's lag is the one to watch.
            self._last_success = time.monotonic()
            metrics.WATCHER_LAST_SUCCESS.set(time.time())
        return stats

    def lag(self) -> float:
        """Seconds since the last cycle that completed (or was rightly skipped)."""
        return time.monotonic() - self._last_success

    async def _take_lease(self) -> bool:
        if time.monotonic() - self._lease_renewed >= self.lease_ttl:
            self._cursors.clear()  # the lease may have lapsed: someone else may have moved them
        held = await self.store.liveness.acquire_lease(LEASE, self.holder, self.lease_ttl, holder_gone=self.holder_gone)
        if held:
            self._lease_renewed = time.monotonic()
        else:
            self._cursors.clear()  # another replica moves the cursors now
        return held

    async def _keep_lease(self, leader: bool) -> None:
        """Renew during a long cycle (many alerts, Slack rate limits) so no one else starts."""
        if not leader or time.monotonic() - self._lease_renewed < self.interval:
            return
        if not await self.store.liveness.renew_lease(LEASE, self.holder, self.lease_ttl):
            self._cursors.clear()
            raise _LeaseLost
        self._lease_renewed = time.monotonic()

    async def _load_cursor(self, kind: EventKind, leader: bool) -> Cursor:
        cached = self._cursors.get(kind)
        if cached is not None and leader:
            return cached
        text = await self.store.cursors.get(f"{LEASE}:{kind}")
        cursor = Cursor.load(text) if text is not None else None
        if cursor is None:
            if text is not None:
                log.warning("watcher: unreadable %s cursor %r; starting from the lookback window", kind, text[:80])
            # First start: only failures within the lookback window, not the whole history.
            cursor = self._fresh_cursor()
            await self._save_cursor(kind, cursor, leader)
        elif leader:
            self._cursors[kind] = cursor
        return cursor

    async def _save_cursor(self, kind: EventKind, cursor: Cursor, leader: bool) -> None:
        await self.store.cursors.set(f"{LEASE}:{kind}", cursor.dump())
        if leader:
            self._cursors[kind] = cursor

    async def _poll_kind(self, kind: EventKind, stats: KindStats, *, leader: bool) -> None:
        cursor = await self._load_cursor(kind, leader)
        new = await self.lister.list_new(kind, cursor, stats)
        stats.new = len(new)
        refused: set[str] = set()  # channels Slack refused this cycle: don't hammer them
        gone: dict[str, str] = {}  # channels Slack refused for good this cycle, and why
        handled: list[tuple[int, str, bool | None]] = []  # None: waits for its storm digest
        settled: dict[str, bool] = {}  # those, by event id, once the digests went out
        try:
            await self.storms.begin([event for _, event in new], self.router, self.mutes)
            for micros, event in new:
                assert event.id is not None
                if event.is_failure:
                    stats.failures += 1
                    finished = await self.posting.alert(event, stats, refused, gone, leader)
                else:
                    await self.posting.passed(event)
                    finished = True
                handled.append((micros, event.id, finished))
            waiting = {alert_key(e): e.id for _, e in new if e.id is not None}
            flushed = await self.storms.flush(
                stats, refused, gone, self.posting.post_one, lambda: self._keep_lease(leader)
            )
            settled = {waiting[key]: done for key, done in flushed.items()}
        except BaseException:
            await self.storms.abandon()
            raise
        finally:
            # Also after an error: what was alerted stays alerted, the rest is retried. The
            # cursor moves past events in order, up to the first one still to be alerted.
            done = cursor
            held = False
            for micros, event_id, finished in handled:
                if finished is None:
                    finished = settled.get(event_id, False)
                if not finished:
                    held = True
                    stats.pending += 1
                elif not held:
                    done = done.past(micros, event_id)
            if done != cursor:
                await self._save_cursor(kind, done, leader)

    # -- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Poll now (the webhook). Wakes during a poll coalesce into one more poll."""
        self._wake.set()

    async def run(self) -> None:
        """Poll every ``interval`` seconds, or at once when woken, until cancelled or stopped.
        Backs off exponentially (up to 5 minutes) while cycles fail."""
        self._task = asyncio.current_task()
        metrics.WATCHER_LAG.set_function(self.lag)
        log.info(
            "watcher started",
            extra={"interval_s": self.interval, "kinds": list(self.kinds), "holder": self.holder},
        )
        bad = 0
        woken = follow_up = False  # this poll answers a wake / is the follow-up of one
        while not self._stopping:
            self._wake.clear()
            try:
                stats = await self.poll_once(force=woken or follow_up)
                healthy = stats.healthy
            except Exception:  # poll_once handles the expected ones; never let the loop die
                log.exception("watcher: cycle failed unexpectedly")
                healthy = False
            bad = 0 if healthy else bad + 1
            delay = backoff_delay(bad, self.interval)
            if bad:
                delay *= random.uniform(0.8, 1.0)  # replicas must not retry in lockstep
                log.debug("watcher: %d bad cycle(s) in a row; next poll in %.1fs", bad, delay)
            # After a wake, one more forced poll soon: the webhook can beat the status update.
            follow_up = woken and healthy
            if follow_up:
                delay = min(delay, WAKE_FOLLOW_UP)
            woken = await self._sleep(delay)
            follow_up = follow_up and not woken

    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds or until woken; True when woken."""
        if not await wait_event(self._wake, delay):
            return False
        if self._stopping:
            return False
        gap = self._last_poll + MIN_WAKE_GAP - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)
        return True

    async def stop(self, grace: float = 5.0) -> None:
        """End ``run`` (letting a poll in progress finish for up to ``grace`` seconds) and
        release the lease so another replica takes over at once."""
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            except Exception:
                log.exception("watcher: stopped with an error")
        await quietly(self.store.liveness.release_lease(LEASE, self.holder))
        self._cursors.clear()
