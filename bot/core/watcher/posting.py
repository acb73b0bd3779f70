"""One alert per failure: route it, claim it (so replicas and woken polls never post it twice),
post it in the right place (a rerun that failed again goes in the first alert's thread), keep
aside what Slack refuses for good, and save what Slack took even when the store stumbles."""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.models import Event, as_kind
from bot.core.alerts import post_alert
from bot.core.digests import DigestBoard
from bot.core.failures import FailureContext
from bot.core.mutes import ActiveMutes
from bot.core.ports import AlertNotifier
from bot.core.requests import MessageRef
from bot.core.routing import Router
from bot.core.undelivered import MOOT, UNDELIVERABLE, UndeliveredAlerts
from bot.core.watcher.details import FailureDetails
from bot.core.watcher.healing import WebhookHealing
from bot.core.watcher.policy import AlertPolicy
from bot.core.watcher.stats import KindStats
from bot.core.watcher.storm import Due, Storms
from bot.core.webhook_recovery import WebhookRecovery
from bot.store import AlertRecord, Store, UndeliveredAlert

log = logging.getLogger("bot.core.watcher")

# A claim outlives a crash between claiming and posting by this long (then another try).
CLAIM_WINDOW: Final = 600.0


def series_key(event: Event) -> str | None:
    """Failures of one pipeline on one branch form a series; None when either is unknown."""
    if not event.pipeline or not event.branch:
        return None
    return f"{event.kind}:{event.project or ''}:{event.pipeline}:{event.repository or ''}:{event.branch}"


def alert_key(event: Event) -> str:
    index = event.execution_index
    return f"alert:{event.kind}:{event.id}:{'none' if index is None else index}"


@dataclass(frozen=True)
class Claimed:
    """An alert whose claim ``key`` this replica won as ``holder``, and where it is posted."""

    key: str
    holder: str
    event: Event
    channel: str
    mention: str | None
    thread_ts: str | None = None  # the thread it goes in, if any
    series: str | None = None  # the series it begins (or repeats)
    root: AlertRecord | None = None  # the series' open alert, whose thread it goes in


class AlertPosting:
    """The alerting half of a watcher (``loop.Watcher`` polls): it owns what an alert needs on
    its way — why the failure failed, the mutes, the storms' digests, the alerts kept aside."""

    def __init__(
        self,
        store: Store,
        notifier: AlertNotifier,
        router: Router,
        client: CodeStreamClient,
        *,
        policy: AlertPolicy,
        holder: str,
        keep_lease: Callable[[bool], Awaitable[None]],
        digests: DigestBoard,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.router = router
        self.undelivered = UndeliveredAlerts(store, client.get_event, give_up_after=policy.undeliverable_after)
        self.details = FailureDetails(client)  # why each failure failed, read once per execution
        self.authors = policy.authors  # who pushed, to mention (BOT_MENTION_AUTHOR)
        self.repeat_window = policy.repeat_window  # repeats go in the thread of the series' alert
        self.read_event = client.get_event
        self._open_series: set[str] | None = None  # series with an open alert, read once a cycle
        self.mutes = ActiveMutes(store)  # muted pipelines and branches: counted, not posted
        # Many failures for one channel at once: one digest message.
        self.storms = Storms(
            store,
            notifier,
            digests,
            self.details,
            self.undelivered,
            threshold=policy.digest_threshold,
            window=policy.digest_window,
        )
        self.healing = WebhookHealing(store, notifier, WebhookRecovery(client, store), client.get_event)
        self.holder = holder
        self.keep_lease = keep_lease  # renews the watcher's lease during a long cycle
        self._unsaved: dict[str, AlertRecord] = {}  # posted, but the store failed to record it
        self._logged: OrderedDict[str, None] = OrderedDict()  # "not alerted" lines already logged

    async def alert(
        self, event: Event, stats: KindStats, refused: set[str], gone: dict[str, str], leader: bool
    ) -> bool | None:
        """Post the alert for one failure unless it exists. True when nothing is left to do;
        None when it waits for its channel's storm digest (``Storms.flush`` says how that went)."""
        assert event.id is not None
        kind, index = event.kind, event.execution_index
        key = alert_key(event)
        decision = self.router.route(event)
        if not decision.alerts:
            self._log_once(key, decision.dropped, decision.rule)
            return True
        store = self.store
        if key in self._unsaved or self._unsaved_digest(key):
            return True  # posted already; saved as soon as the store answers
        if await store.alerts.get(kind, event.id, index) is not None:
            return True
        muted = self.mutes.matching(event)
        if muted is not None:
            await self.mutes.suppressed(muted, event)
            stats.muted += 1
            return True
        # A rerun that failed again goes in the thread of the event's first alert; another failure
        # of the same pipeline on the same branch, in the thread of the series' open alert.
        channel, thread_ts, mention = decision.channel, None, decision.mention
        series, root = series_key(event), None
        prior = await store.alerts.latest_for_event(kind, event.id)
        if prior is not None:
            channel, thread_ts = prior.channel_id, prior.thread_ts or prior.ts
        elif series is not None and self.repeat_window > 0:
            since = store.now() - timedelta(seconds=self.repeat_window)
            root = await store.alerts.open_for_series(series, since=since)
            if root is not None and root.channel_id != decision.channel:
                root = None  # routing sends it elsewhere now: a new alert where it belongs
            if root is not None:  # the team was paged by the first one: no route mention again
                channel, thread_ts, mention = root.channel_id, root.ts, None
        assert channel is not None
        if channel in refused:
            return False
        if channel in gone:  # refused for good a moment ago: do not ask Slack again this cycle
            await self.undelivered.hold(
                key, event, channel=channel, thread_ts=thread_ts, mention=mention, reason=gone[channel]
            )
            stats.undeliverable += 1
            return True
        await self.keep_lease(leader)
        holder = f"{self.holder}:{uuid.uuid4().hex[:12]}"
        claim = await store.claims.claim(key, holder, CLAIM_WINDOW, {"channel": channel})
        if not claim.won:
            # Another replica (or a woken poll) is posting it; done once its alert is saved.
            return await store.alerts.get(kind, event.id, index) is not None
        if thread_ts is None and self.storms.takes(channel):
            self.storms.add(channel, Due(key, holder, event, mention))
            return None
        claimed = Claimed(key, holder, event, channel, mention, thread_ts, series, root)
        return await self.post_claimed(claimed, stats=stats, refused=refused, gone=gone)

    async def post_one(self, due: Due, channel: str, stats: KindStats, refused: set[str], gone: dict[str, str]) -> bool:
        """A failure that waited for a storm that did not come (its channel stayed under the
        threshold): posted alone after all, as ``alert`` would have. True when done."""
        if channel in refused:
            await quietly(self.store.claims.release(due.key, due.holder))
            return False
        if channel in gone:
            await quietly(self.store.claims.release(due.key, due.holder))
            await self.undelivered.hold(
                due.key, due.event, channel=channel, thread_ts=None, mention=due.mention, reason=gone[channel]
            )
            stats.undeliverable += 1
            return True
        claimed = Claimed(due.key, due.holder, due.event, channel, due.mention, series=series_key(due.event))
        return await self.post_claimed(claimed, stats=stats, refused=refused, gone=gone)

    async def post_claimed(
        self, claimed: Claimed, *, stats: KindStats, refused: set[str], gone: dict[str, str]
    ) -> bool:
        """Post the alert this caller holds the claim on; True when nothing is left to do."""
        record, refusal = await self._post(claimed)
        if record is not None:
            stats.alerts += 1
            if record.series is not None and self._open_series is not None:
                self._open_series.add(record.series)  # a new series' alert, open from now on
            if claimed.root is not None:
                stats.repeats += 1
                await self._count_repeat(claimed.root)
            return True
        channel = claimed.channel
        if refusal in UNDELIVERABLE:
            # Slack will keep saying no: keep the alert aside and let the cursor move on.
            gone[channel] = refusal
            await self.undelivered.hold(
                claimed.key,
                claimed.event,
                channel=channel,
                thread_ts=claimed.thread_ts,
                mention=claimed.mention,
                reason=refusal,
            )
            stats.undeliverable += 1
            return True
        stats.post_failures += 1
        refused.add(channel)
        return False

    async def repost(self, event: Event, held: UndeliveredAlert) -> str | None:
        """One more try at an alert kept aside: None when it is posted (or already was)."""
        if event.execution_index != held.execution_index or not event.is_failure:
            return MOOT  # rerun or fixed since: that failure's alert is moot (a new one has its own)
        if await self.store.alerts.get(event.kind, held.event_id, held.execution_index) is not None:
            return MOOT  # alerted meanwhile
        holder = f"{self.holder}:{uuid.uuid4().hex[:12]}"
        claim = await self.store.claims.claim(held.key, holder, CLAIM_WINDOW, {"channel": held.channel_id})
        if not claim.won:
            return "claimed"
        try:
            claimed = Claimed(held.key, holder, event, held.channel_id, held.mention, held.thread_ts, series_key(event))
            record, refusal = await self._post(claimed)
        except Exception:
            if held.key in self._unsaved:
                return None  # posted; saved by the next cycle
            raise
        return None if record is not None else refusal or "unknown"

    async def _details(self, event: Event) -> FailureContext | None:
        """Why it failed; for a trigger failure, who can fix its webhook as Slack users too."""
        failure = await self.details.of(event)
        if failure is None or not failure.fixers or self.authors is None:
            return failure
        users = [await self.authors.user_for(person) for person in failure.fixers]
        return replace(failure, fixer_users=tuple(u or "" for u in users))

    async def _post(self, claimed: Claimed) -> tuple[AlertRecord | None, str | None]:
        """Post under the claim won: (the saved alert, None) or (None, Slack's refusal). The
        claim is released when nothing was posted; kept when Slack has the alert."""
        event, channel, mention, thread_ts = claimed.event, claimed.channel, claimed.mention, claimed.thread_ts
        posted: list[AlertRecord] = []
        try:
            failure = await self._details(event)
            author = await self.authors.user_for(event.owner) if self.authors is not None else None
            record, delivered = await post_alert(
                self.notifier,
                self.store,
                event,
                channel=channel,
                mention=mention,
                thread_ts=thread_ts,
                on_posted=posted.append,
                failure=failure,
                author=author,
                series=claimed.series if thread_ts is None else None,
                repeat=claimed.root is not None,
            )
        except BaseException:
            if posted:  # Slack has it, only the store failed: saved by the next cycle, never re-posted
                self._unsaved[claimed.key] = posted[0]
            else:
                await quietly(self.store.claims.release(claimed.key, claimed.holder))
            raise
        if record is None:
            await quietly(self.store.claims.release(claimed.key, claimed.holder))
        return record, delivered.refused

    async def _count_repeat(self, root: AlertRecord) -> None:
        """The series' alert shows how many failures followed it — unless someone acted from it
        (its message then says how that went, which a redraw must not erase). Best effort: the
        repeat itself is posted and saved already."""
        assert root.id is not None
        try:
            repeats = await self.store.alerts.count_repeat(root.id)
            kind = as_kind(root.kind)
            if kind is None:
                return
            event = await self.read_event(kind, root.event_id)
            failure = await self._details(event)
            # Checked last, right before the redraw, to keep the window for a click small.
            if await self.store.alerts.has_actions(root.channel_id, root.ts):
                return
            if await self.healing.redraw_if_working(root):
                return  # a broken webhook's alert, working again: a failed run there was started
            ref = MessageRef(root.channel_id, root.ts, root.ts)
            await self.notifier.show_repeats(
                ref, event, failure=failure, repeats=repeats, mention=root.mention, author=root.author
            )
        except Exception as exc:  # noqa: BLE001 - logged; the repeat is posted, only the count is late
            log.warning("watcher: could not update the repeat count: %s", explain(exc))

    def begin_cycle(self) -> None:
        self._open_series = None  # read again, once, when the cycle first needs it

    async def passed(self, event: Event) -> None:
        """A run of a series passed (a fix pushed outside the bot, or a rerun from vRA): its open
        alert is resolved, so its next failure is a new alert that pages again. The open series
        are read once a cycle; only a series among them costs a write."""
        await self.mutes.passed(event, self.store.now())  # "until it passes again" ends here
        series = series_key(event)
        if series is None or self.repeat_window <= 0:
            return
        since = self.store.now() - timedelta(seconds=self.repeat_window)
        if self._open_series is None:
            self._open_series = await self.store.alerts.open_series(since=since)
        if series not in self._open_series:
            return
        await self.healing.saw(series, event, since=since)  # a broken webhook's push started its pipeline
        if not event.passed:
            return
        self._open_series.discard(series)
        passed_at = event.updated or self.store.now()
        await self.store.alerts.resolve_series(series, passed_at=passed_at, at=self.store.now())

    async def save_unsaved(self) -> None:
        for key, record in list(self._unsaved.items()):
            await self.store.alerts.save(record)
            del self._unsaved[key]
        await self.storms.save_unsaved()

    def _unsaved_digest(self, key: str) -> bool:
        return key in self.storms.unsaved_keys

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


async def quietly(operation: Awaitable[Any]) -> None:
    """Best-effort cleanup: a failure here is logged, never raised over the real error."""
    try:
        await operation
    except Exception as exc:  # noqa: BLE001 - logged; the caller is already handling an error
        log.warning("watcher: cleanup failed: %s", explain(exc))


def explain(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
