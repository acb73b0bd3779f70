"""The watcher: finds failed git, Gerrit and Docker-registry events and posts one alert each.

Code Stream sends nothing when an event fails to trigger, so failures are found by polling.
Each cycle, per kind:

1. List events newest-updated first and stop at the kind's cursor (the newest update time
   already handled, plus the ids at exactly that time). Nothing new costs one request.
2. Oldest first, for each new failure: skip it if its alert exists; else claim
   ``alert:{kind}:{id}:{index}`` in the store, post, and let ``post_alert`` save the alert.
3. Move the cursor only past events that are done (alerted, or needing no alert). A failure
   whose post failed stops the cursor there, so it is retried on the next cycle: alerts arrive
   late, never lost, and never twice.

One replica polls at a time (store lease ``watcher``). ``wake()`` (the webhook) polls now,
even on a replica without the lease: the claims keep that exactly-once too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app.runtime import Runtime
from bot.app.settings import Settings
from bot.codestream.errors import BadRequest, CodeStreamError
from bot.codestream.models import Event, EventKind, EventPage
from bot.core import metrics
from bot.core.alerts import post_alert
from bot.core.fileconfig import FileConfig
from bot.core.routing import Router
from bot.core.undelivered import MOOT, UNDELIVERABLE, UndeliveredAlerts
from bot.slack.delivery import Delivery
from bot.slack.render.messages import SlackMessage
from bot.store import AlertRecord, UndeliveredAlert

log = logging.getLogger(__name__)

LEASE: Final = "watcher"
ORDER_BY: Final = "updatedAt desc"
MAX_BACKOFF: Final = 300.0
# A claim outlives a crash between claiming and posting by this long (then another try).
CLAIM_WINDOW: Final = 600.0
# The $filter asks a little further back than the cursor: a server comparing timestamps at a
# coarser precision must still return everything we need (we filter exactly client-side).
FILTER_MARGIN_US: Final = 1_000_000
# After a wake, poll again this soon: the webhook may beat the event's status update.
WAKE_FOLLOW_UP: Final = 5.0
MIN_WAKE_GAP: Final = 0.5  # seconds between woken polls, so a burst of webhooks is one poll
WEBHOOK_PATH: Final = "/hooks/codestream"
WEBHOOK_HEADER: Final = "X-Codestream-Bot-Token"
WEBHOOK_MAX_BODY: Final = 64 * 1024
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EXPECTED_ERRORS: Final = (CodeStreamError, SQLAlchemyError, OSError, TimeoutError)


def watch_enabled(settings: Settings, file_config: FileConfig) -> bool:
    """BOT_WATCH wins when set; otherwise on when there is somewhere to send an alert."""
    if settings.bot_watch is not None:
        return settings.bot_watch
    return Router.from_config(file_config, settings.bot_alert_channel).configured


def backoff_delay(failures: int, interval: float, cap: float = MAX_BACKOFF) -> float:
    """Delay after ``failures`` bad cycles in a row: 2x, 4x, ... the interval, capped."""
    if failures <= 0:
        return interval
    return min(max(cap, interval), interval * 2.0 ** min(failures, 30))


# --- cursor ---------------------------------------------------------------------------------


def update_micros(event: Event) -> int | None:
    """The event's update time in exact microseconds since the epoch."""
    raw = event.update_time_micros
    if raw is not None and raw > 10**14:  # already micros; a float round trip could lose 1 µs
        return raw
    updated = event.updated
    return None if updated is None else (updated - _EPOCH) // timedelta(microseconds=1)


def _format_micros(micros: int) -> str:
    """Code Stream's own timestamp format: ``2019-09-16 09:25:38.065065+00``."""
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


@dataclass(frozen=True)
class Cursor:
    """Everything updated before ``micros``, or at ``micros`` with an id in ``ids``, is done.
    The ids settle ties: several events can share one update time."""

    micros: int
    ids: frozenset[str] = frozenset()

    def covers(self, micros: int, event_id: str) -> bool:
        return micros < self.micros or (micros == self.micros and event_id in self.ids)

    def past(self, micros: int, event_id: str) -> Cursor:
        if micros == self.micros:
            return Cursor(micros, self.ids | {event_id})
        return Cursor(micros, frozenset({event_id})) if micros > self.micros else self

    def dump(self) -> str:
        return json.dumps({"micros": self.micros, "ids": sorted(self.ids)}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> Cursor | None:
        try:
            data = json.loads(text)
            micros, ids = data["micros"], data["ids"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(micros, int) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return None
        return cls(micros, frozenset(ids))


# --- statistics -------------------------------------------------------------------------------


@dataclass
class KindStats:
    requests: int = 0  # list requests made (the client's own retries not counted)
    events: int = 0  # events listed
    new: int = 0  # events past the cursor
    failures: int = 0  # new events that are failures
    alerts: int = 0  # alerts posted
    post_failures: int = 0  # posts Slack refused (retried next cycle)
    pending: int = 0  # failures left for a later cycle
    undeliverable: int = 0  # alerts Slack refused for good: kept aside, retried later
    error: str | None = None


@dataclass
class CycleStats:
    kinds: dict[EventKind, KindStats] = field(default_factory=dict)
    skipped: bool = False  # another replica holds the lease
    forced: bool = False  # polled without the lease (a wake)
    error: str | None = None  # the cycle could not run at all (e.g. the store is down)
    reposted: int = 0  # alerts kept aside earlier that Slack took this time
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.kinds.values())

    @property
    def events_seen(self) -> int:
        return sum(s.events for s in self.kinds.values())

    @property
    def alerts_posted(self) -> int:
        return sum(s.alerts for s in self.kinds.values())

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.kinds.values())

    @property
    def healthy(self) -> bool:
        """False when the loop should back off: nothing could be polled, or Slack took nothing."""
        if self.error is not None:
            return False
        if self.kinds and all(s.error is not None for s in self.kinds.values()):
            return False
        refused = sum(s.post_failures for s in self.kinds.values())
        return not (refused and not self.alerts_posted)


class _LeaseLost(Exception):
    pass


class _TrackingDelivery(Delivery):
    """Remembers the ts of a successful post, so that a post whose alert could not be saved
    (the store failed right after Slack answered) is saved later instead of posted again."""

    def __init__(self, inner: Delivery) -> None:
        super().__init__(inner.web)
        self._inner = inner
        self.posted_ts: str | None = None
        self.refused: str | None = None  # Slack's error code when it refused

    async def post(self, channel: str, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        self.posted_ts, self.refused = await self._inner.post_or_why(channel, message, thread_ts=thread_ts)
        return self.posted_ts


# --- the watcher ------------------------------------------------------------------------------


class Watcher:
    def __init__(
        self,
        runtime: Runtime,
        delivery: Delivery,
        router: Router,
        *,
        interval: float,
        lookback: float,
        page_size: int = 50,
        holder: str | None = None,
    ) -> None:
        if interval <= 0 or lookback < 0 or page_size < 1:
            raise ValueError("need interval > 0, lookback >= 0 and page_size >= 1")
        self.runtime = runtime
        self.delivery = delivery
        self.router = router
        self.interval = interval
        self.lookback = lookback
        self.page_size = page_size
        self.holder = holder or runtime.replica
        self.lease_ttl = 3 * interval
        self.kinds: tuple[EventKind, ...] = router.kinds()
        # Turned off, with a warning, if this Code Stream answers 400 to them.
        self.use_filter = True
        self.use_orderby = True
        self._cursors: dict[EventKind, Cursor] = {}  # valid only while we keep the lease
        self._unsaved: dict[str, AlertRecord] = {}  # posted, but the store failed to record it
        self._logged: OrderedDict[str, None] = OrderedDict()  # "not alerted" lines already logged
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lease_renewed = float("-inf")
        self._polling = asyncio.Lock()
        self._last_poll = float("-inf")
        self._last_success = time.monotonic()
        self.undelivered = UndeliveredAlerts(
            runtime.store, runtime.client.get_event, give_up_after=runtime.settings.bot_undeliverable_hours * 3600
        )

    # -- one cycle ---------------------------------------------------------------------------

    async def poll_once(self, *, force: bool = False) -> CycleStats:
        """Poll every kind once. ``force``: poll even if another replica holds the lease."""
        async with self._polling:  # one cycle at a time per watcher, whoever calls
            return await self._poll_once(force)

    async def _poll_once(self, force: bool) -> CycleStats:
        cpu, wall = time.process_time(), time.perf_counter()
        stats = CycleStats(forced=force)
        self._last_poll = time.monotonic()
        try:
            leader = await self._take_lease()
        except _EXPECTED_ERRORS as exc:
            stats.error = f"lease: {_explain(exc)}"
            leader = False
            if not force:
                return self._finish(stats, cpu, wall)
        if not leader and not force:
            stats.skipped = True
            return self._finish(stats, cpu, wall)
        try:
            await self._save_unsaved()
        except _EXPECTED_ERRORS as exc:
            stats.error = f"recording posted alerts: {_explain(exc)}"
            return self._finish(stats, cpu, wall)
        if leader:
            try:
                stats.reposted = await self.undelivered.retry_due(self._repost, self.runtime.store.now())
            except _EXPECTED_ERRORS as exc:
                log.warning("watcher: retrying undelivered alerts failed: %s", _explain(exc))
        for kind in self.kinds:
            kind_stats = stats.kinds[kind] = KindStats()
            try:
                await self._poll_kind(kind, kind_stats, leader=leader)
            except _LeaseLost:
                log.info("watcher: lease lost to another replica mid-cycle; it carries on")
                break
            except _EXPECTED_ERRORS as exc:
                kind_stats.error = _explain(exc)
                self._cursors.pop(kind, None)
            except Exception as exc:
                kind_stats.error = _explain(exc)
                self._cursors.pop(kind, None)
                log.exception("watcher: %s events not polled (unexpected error)", kind)
        return self._finish(stats, cpu, wall)

    def _finish(self, stats: CycleStats, cpu: float, wall: float) -> CycleStats:
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
        held = await self.runtime.store.acquire_lease(
            LEASE, self.holder, self.lease_ttl, holder_gone=self.runtime.lease_holder_gone
        )
        if held:
            self._lease_renewed = time.monotonic()
        else:
            self._cursors.clear()  # another replica moves the cursors now
        return held

    async def _keep_lease(self, leader: bool) -> None:
        """Renew during a long cycle (many alerts, Slack rate limits) so no one else starts."""
        if not leader or time.monotonic() - self._lease_renewed < self.interval:
            return
        if not await self.runtime.store.renew_lease(LEASE, self.holder, self.lease_ttl):
            self._cursors.clear()
            raise _LeaseLost
        self._lease_renewed = time.monotonic()

    async def _load_cursor(self, kind: EventKind, leader: bool) -> Cursor:
        cached = self._cursors.get(kind)
        if cached is not None and leader:
            return cached
        text = await self.runtime.store.get_cursor(f"{LEASE}:{kind}")
        cursor = Cursor.load(text) if text is not None else None
        if cursor is None:
            if text is not None:
                log.warning("watcher: unreadable %s cursor %r; starting from the lookback window", kind, text[:80])
            # First start: only failures within the lookback window, not the whole history.
            now = (datetime.now(UTC) - _EPOCH) // timedelta(microseconds=1)
            cursor = Cursor(now - int(self.lookback * 1_000_000))
            await self._save_cursor(kind, cursor, leader)
        elif leader:
            self._cursors[kind] = cursor
        return cursor

    async def _save_cursor(self, kind: EventKind, cursor: Cursor, leader: bool) -> None:
        await self.runtime.store.set_cursor(f"{LEASE}:{kind}", cursor.dump())
        if leader:
            self._cursors[kind] = cursor

    async def _poll_kind(self, kind: EventKind, stats: KindStats, *, leader: bool) -> None:
        cursor = await self._load_cursor(kind, leader)
        new = await self._list_new(kind, cursor, stats)
        stats.new = len(new)
        done = cursor
        held = False  # a failure before this point is still to be alerted: the cursor stays
        refused: set[str] = set()  # channels Slack refused this cycle: don't hammer them
        gone: dict[str, str] = {}  # channels Slack refused for good this cycle, and why
        try:
            for micros, event in new:
                assert event.id is not None
                if event.is_failure:
                    stats.failures += 1
                    finished = await self._alert(event, stats, refused, gone, leader)
                else:
                    finished = True
                if not finished:
                    held = True
                    stats.pending += 1
                elif not held:
                    done = done.past(micros, event.id)
        finally:
            # Also after an error: what was alerted stays alerted, the rest is retried.
            if done != cursor:
                await self._save_cursor(kind, done, leader)

    async def _list_new(self, kind: EventKind, cursor: Cursor, stats: KindStats) -> list[tuple[int, Event]]:
        """Events past the cursor, oldest first. Pages newest first and stops at the cursor,
        unless the server turns out not to sort (then it reads every page)."""
        found: list[tuple[int, Event]] = []
        listed: set[str] = set()
        skip = 0
        previous: int | None = None
        ordered = self.use_orderby
        while True:
            page = await self._list_page(kind, cursor, skip)
            stats.requests += 1
            stats.events += len(page.events)
            reached = False
            fresh = 0
            for event in page.events:
                micros = update_micros(event)
                # No update time: cannot be placed (Code Stream always sets one). Seen already:
                # the list shifted while paging; an event updated meanwhile shows up next cycle.
                if micros is None or not event.id or event.id in listed:
                    continue
                listed.add(event.id)
                fresh += 1
                if ordered and previous is not None and micros > previous:
                    ordered = False
                    log.warning("watcher: Code Stream ignored $orderby=%s; reading every %s event", ORDER_BY, kind)
                previous = micros
                reached = reached or micros < cursor.micros
                if not cursor.covers(micros, event.id):
                    found.append((micros, event))
            skip += len(page.events)
            if not page.events or (reached and ordered):
                break
            if page.total_count is not None and skip >= page.total_count:
                break
            if fresh == 0:
                break  # nothing but repeats: a server ignoring $skip would otherwise page forever
        return sorted(found, key=lambda item: (item[0], item[1].id or ""))

    async def _list_page(self, kind: EventKind, cursor: Cursor, skip: int) -> EventPage:
        """One page; drops $filter, then $orderby, if this Code Stream rejects them (400)."""
        while True:
            since = _format_micros(cursor.micros - FILTER_MARGIN_US)
            query = f"updatedAt ge '{since}'" if self.use_filter else None
            order = ORDER_BY if self.use_orderby else None
            try:
                return await self.runtime.client.list_events(
                    kind, filter=query, orderby=order, top=self.page_size, skip=skip
                )
            except BadRequest:
                if query is not None:
                    log.warning("watcher: Code Stream rejected $filter=%s; not filtering from now on", query)
                    self.use_filter = False
                elif order is not None:
                    log.warning("watcher: Code Stream rejected $orderby=%s; reading every page from now on", order)
                    self.use_orderby = False
                else:
                    raise

    async def _alert(
        self, event: Event, stats: KindStats, refused: set[str], gone: dict[str, str], leader: bool
    ) -> bool:
        """Post the alert for one failure unless it exists. True when nothing is left to do."""
        assert event.id is not None
        kind, index = event.kind, event.execution_index
        key = f"alert:{kind}:{event.id}:{'none' if index is None else index}"
        decision = self.router.route(event)
        if not decision.alerts:
            self._log_once(key, decision.dropped, decision.rule)
            return True
        store = self.runtime.store
        if key in self._unsaved or await store.get_alert(kind, event.id, index) is not None:
            return True
        # A rerun that failed again goes in the thread of the event's first alert.
        channel, thread_ts = decision.channel, None
        prior = await store.latest_alert_for_event(kind, event.id)
        if prior is not None:
            channel, thread_ts = prior.channel_id, prior.thread_ts or prior.ts
        assert channel is not None
        if channel in refused:
            return False
        if channel in gone:  # refused for good a moment ago: do not ask Slack again this cycle
            await self.undelivered.hold(
                key, event, channel=channel, thread_ts=thread_ts, mention=decision.mention, reason=gone[channel]
            )
            stats.undeliverable += 1
            return True
        await self._keep_lease(leader)
        holder = f"{self.holder}:{uuid.uuid4().hex[:12]}"
        claim = await store.claim(key, holder, CLAIM_WINDOW, {"channel": channel})
        if not claim.won:
            # Another replica (or a woken poll) is posting it; done once its alert is saved.
            return await store.get_alert(kind, event.id, index) is not None
        tracking = _TrackingDelivery(self.delivery)
        try:
            record = await post_alert(
                self.runtime, tracking, event, channel=channel, mention=decision.mention, thread_ts=thread_ts
            )
        except BaseException:
            if not self._keep_unsaved(key, tracking, event, index, channel, thread_ts):
                await _quietly(store.release_claim(key, holder))
            raise
        if record is None:
            await _quietly(store.release_claim(key, holder))
            if tracking.refused in UNDELIVERABLE:
                # Slack will keep saying no: keep the alert aside and let the cursor move on.
                gone[channel] = tracking.refused
                await self.undelivered.hold(
                    key, event, channel=channel, thread_ts=thread_ts, mention=decision.mention, reason=tracking.refused
                )
                stats.undeliverable += 1
                return True
            stats.post_failures += 1
            refused.add(channel)
            return False
        stats.alerts += 1
        return True

    async def _repost(self, event: Event, held: UndeliveredAlert) -> str | None:
        """One more try at an alert kept aside: None when it is posted (or already was)."""
        store = self.runtime.store
        if event.execution_index != held.execution_index or not event.is_failure:
            return MOOT  # rerun or fixed since: that failure's alert is moot (a new one has its own)
        if await store.get_alert(event.kind, held.event_id, held.execution_index) is not None:
            return MOOT  # alerted meanwhile
        holder = f"{self.holder}:{uuid.uuid4().hex[:12]}"
        claim = await store.claim(held.key, holder, CLAIM_WINDOW, {"channel": held.channel_id})
        if not claim.won:
            return "claimed"
        tracking = _TrackingDelivery(self.delivery)
        try:
            record = await post_alert(
                self.runtime, tracking, event, channel=held.channel_id, mention=held.mention, thread_ts=held.thread_ts
            )
        except BaseException:
            if self._keep_unsaved(held.key, tracking, event, held.execution_index, held.channel_id, held.thread_ts):
                return None
            await _quietly(store.release_claim(held.key, holder))
            raise
        if record is None:
            await _quietly(store.release_claim(held.key, holder))
            return tracking.refused or "unknown"
        return None

    def _keep_unsaved(
        self,
        key: str,
        tracking: _TrackingDelivery,
        event: Event,
        index: int | None,
        channel: str,
        thread_ts: str | None,
    ) -> bool:
        """After a failure: if Slack has the alert and only the store failed, remember it to be
        saved by the next cycle (never posted again). Whether it did."""
        if tracking.posted_ts is None or event.id is None:
            return False
        self._unsaved[key] = AlertRecord(
            kind=event.kind, event_id=event.id, execution_index=index,
            channel_id=channel, ts=tracking.posted_ts, thread_ts=thread_ts,
        )  # fmt: skip
        return True

    async def _save_unsaved(self) -> None:
        for key, record in list(self._unsaved.items()):
            await self.runtime.store.save_alert(record)
            del self._unsaved[key]

    def _log_once(self, key: str, dropped: bool, rule: int | None) -> None:
        if key in self._logged:
            return
        self._logged[key] = None
        if len(self._logged) > 10_000:
            self._logged.popitem(last=False)
        if dropped:
            log.debug("watcher: %s not alerted: dropped by routes[%s]", key, rule)
        else:
            log.info("watcher: %s not alerted: no routing rule matched and BOT_ALERT_CHANNEL is not set", key)

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
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=delay)
        except TimeoutError:
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
        await _quietly(self.runtime.store.release_lease(LEASE, self.holder))
        self._cursors.clear()


async def _quietly(operation: Awaitable[Any]) -> None:
    """Best-effort cleanup: a failure here is logged, never raised over the real error."""
    try:
        await operation
    except Exception as exc:  # noqa: BLE001 - logged; the caller is already handling an error
        log.warning("watcher: cleanup failed: %s", _explain(exc))


def _explain(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def build_watcher(
    runtime: Runtime, delivery: Delivery, file_config: FileConfig, *, page_size: int = 50
) -> Watcher | None:
    """The watcher for these settings, or None when watching is off."""
    settings = runtime.settings
    if not watch_enabled(settings, file_config):
        return None
    router = Router.from_config(file_config, settings.bot_alert_channel)
    if not router.configured:
        log.warning("BOT_WATCH is on but no alert channel is configured: failures will not be alerted")
    return Watcher(
        runtime,
        delivery,
        router,
        interval=settings.bot_watch_interval,
        lookback=settings.bot_watch_lookback,
        page_size=page_size,
    )


# --- the webhook ------------------------------------------------------------------------------


def webhook_route(watcher: Watcher, token: SecretStr | None) -> Route:
    """``POST /hooks/codestream``: a Code Stream pipeline notification (or anything holding the
    token) makes the watcher poll now. The body is not used; it is only size-checked."""
    expected = token.get_secret_value().encode() if token is not None else None

    async def hook(request: Request) -> Response:
        if expected is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        given = request.headers.get(WEBHOOK_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"error": f"missing or wrong {WEBHOOK_HEADER}"}, status_code=401)
        if not await _body_fits(request, WEBHOOK_MAX_BODY):
            return JSONResponse({"error": "request body too large"}, status_code=413)
        watcher.wake()
        return JSONResponse({"status": "accepted"}, status_code=202)

    return Route(WEBHOOK_PATH, hook, methods=["POST"])


async def _body_fits(request: Request, limit: int) -> bool:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return False
    received = 0
    with contextlib.suppress(ClientDisconnect):
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                return False
    return True
