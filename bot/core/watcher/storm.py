"""Storms: when more than ``threshold`` failures are due for one channel within ``window``
seconds (counting the alerts it got in that window), the new ones are listed in one digest
message instead of one alert each; while that digest keeps taking failures (within the window,
for ``MAX_AGE`` at most), later ones join it. A series' repeat or a rerun that failed again still
goes in its own thread.

A cycle first marks the channels that may storm (``begin``: a cheap count of the new failures
routed there); their new top-level alerts then wait, claimed as for an alert
(``alert:{kind}:{id}:{index}``), until the end of the kind's cycle (``flush``), which decides with
the true count — only failures that really need a top-level message, plus the channel's recent
alerts: a digest (saved with one alert per row in one transaction), or each posted alone after
all. A failure is listed once, on any replica; one whose digest could not be posted is released
and tried again next cycle (the cursor waits for it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from bot.codestream.models import Event
from bot.core.digests import MAX_ROWS, DigestBoard, row_for
from bot.core.mutes import ActiveMutes
from bot.core.ports import AlertNotifier
from bot.core.routing import Router
from bot.core.undelivered import UNDELIVERABLE, UndeliveredAlerts
from bot.core.watcher.details import FailureDetails
from bot.core.watcher.stats import KindStats
from bot.store import DigestRecord, DigestRow, Store

log = logging.getLogger("bot.core.watcher")

DEFAULT_THRESHOLD: Final = 5
DEFAULT_WINDOW: Final = 120.0
MAX_AGE: Final = 900.0  # a digest takes later failures for this long at most, then a new one starts

# Posts one failure that waited for a storm that did not come (AlertPosting.post_one).
PostOne = Callable[["Due", str, KindStats, set[str], dict[str, str]], Awaitable[bool]]
KeepLease = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Due:
    """A failure claimed for a digest, waiting for the end of the cycle."""

    key: str
    holder: str
    event: Event
    mention: str | None


@dataclass
class ChannelStorm:
    open_digest: DigestRecord | None  # the channel's digest still taking failures, if any
    recent: int = 0  # top-level alerts the channel got within the window
    due: list[Due] = field(default_factory=list)


def _mentions(due: Sequence[Due]) -> str | None:
    """The routes' mentions of the failures in it, each once."""
    found = dict.fromkeys(d.mention for d in due if d.mention)
    return " ".join(m for m in found if m) or None


class Storms:
    def __init__(
        self,
        store: Store,
        notifier: AlertNotifier,
        board: DigestBoard,
        details: FailureDetails,
        undelivered: UndeliveredAlerts,
        *,
        threshold: int,
        window: float,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.board = board
        self.details = details
        self.undelivered = undelivered
        self.threshold = threshold  # 0: never a digest
        self.window = window
        self._channels: dict[str, ChannelStorm] = {}
        self._unsaved: list[tuple[DigestRecord, list[DigestRow], list[str]]] = []  # posted, store failed
        self.unsaved_keys: set[str] = set()

    async def begin(self, events: Sequence[Event], router: Router, mutes: ActiveMutes | None) -> None:
        """Before a kind's new events are handled: which channels may storm this cycle (their
        top-level alerts wait for ``flush``). Costs one store read per channel with new failures,
        nothing when there are none. Counts generously (a failure alerted already, or bound for a
        thread, counts here); ``flush`` decides on the true count."""
        self._channels = {}
        if self.threshold <= 0:
            return
        due: dict[str, int] = {}
        for event in events:
            if not event.is_failure or (mutes is not None and mutes.matching(event) is not None):
                continue
            decision = router.route(event)
            if decision.alerts and decision.channel is not None:
                due[decision.channel] = due.get(decision.channel, 0) + 1
        now = self.store.now()
        since, opened_since = now - timedelta(seconds=self.window), now - timedelta(seconds=MAX_AGE)
        for channel, count in due.items():
            recent, digest = await self.store.digests.channel_load(channel, since=since, opened_since=opened_since)
            if digest is not None or recent + count > self.threshold:
                self._channels[channel] = ChannelStorm(digest, recent=recent)

    def takes(self, channel: str) -> bool:
        return channel in self._channels

    def add(self, channel: str, due: Due) -> None:
        self._channels[channel].due.append(due)

    async def flush(
        self, stats: KindStats, refused: set[str], gone: dict[str, str], post_one: PostOne, keep_lease: KeepLease
    ) -> dict[str, bool]:
        """Each waiting channel: its digest (a new one, or more rows in its open one), or each
        failure alone when it did not storm after all. Alert key -> whether that failure is done.
        On an error, whatever was not done is released (claimed again next cycle)."""
        done: dict[str, bool] = {}
        channels, self._channels = self._channels, {}
        try:
            for channel, storm in channels.items():
                await keep_lease()
                if storm.open_digest is None and len(storm.due) + storm.recent <= self.threshold:
                    for due in storm.due:  # no storm after all (the generous count was too high)
                        done[due.key] = await post_one(due, channel, stats, refused, gone)
                else:
                    done |= await self._flush_channel(channel, storm, stats, refused, gone, keep_lease)
        except BaseException:
            waiting = [d for s in channels.values() for d in s.due]
            await self._release([d for d in waiting if d.key not in done and d.key not in self.unsaved_keys])
            raise
        return done

    async def abandon(self) -> None:
        """The cycle stopped before the digests went out: let the failures be claimed again."""
        channels, self._channels = self._channels, {}
        for storm in channels.values():
            await self._release(storm.due)

    async def _flush_channel(
        self,
        channel: str,
        storm: ChannelStorm,
        stats: KindStats,
        refused: set[str],
        gone: dict[str, str],
        keep_lease: KeepLease,
    ) -> dict[str, bool]:
        done: dict[str, bool] = {}
        due = list(storm.due)
        if storm.open_digest is not None and due:
            taken = await self._join(storm.open_digest, due)
            done |= {d.key: True for d in taken}
            self._count(stats, len(taken))
            due = due[len(taken) :]
        while due:
            await keep_lease()
            chunk, due = due[:MAX_ROWS], due[MAX_ROWS:]
            if channel in refused or channel in gone:
                done |= await self._refused_before(chunk, channel, stats, gone)
                continue
            done |= await self._post(channel, chunk, stats, refused, gone)
        return done

    async def _join(self, digest: DigestRecord, due: list[Due]) -> list[Due]:
        """As many of ``due`` as fit listed in the channel's open digest, and shown: the ones
        taken. When Slack will not redraw it (deleted, archived...), it is closed and they are
        taken out again, to go in a new digest — never counted as shown when they are not."""
        rows = [row_for(d.event, await self.details.of(d.event)) for d in due[:MAX_ROWS]]
        count = await self.store.digests.add_rows(digest, rows, max_rows=MAX_ROWS)
        if not count:
            return []
        assert digest.id is not None
        if await self.board.redraw(digest.id, follow=False):
            return due[:count]
        log.warning(
            "watcher: a digest could not be redrawn; its new failures go in a new one",
            extra={"channel_id": digest.channel_id},
        )
        await self.store.digests.close(digest, rows[:count])
        return []

    async def _refused_before(
        self, chunk: list[Due], channel: str, stats: KindStats, gone: dict[str, str]
    ) -> dict[str, bool]:
        """Slack refused this channel earlier in the cycle: for good (kept aside one by one, like
        any alert) or for now (released, tried next cycle)."""
        await self._release(chunk)
        if channel not in gone:
            return {d.key: False for d in chunk}
        for d in chunk:
            await self.undelivered.hold(
                d.key, d.event, channel=channel, thread_ts=None, mention=d.mention, reason=gone[channel]
            )
        stats.undeliverable += len(chunk)
        return {d.key: True for d in chunk}

    async def _post(
        self, channel: str, chunk: list[Due], stats: KindStats, refused: set[str], gone: dict[str, str]
    ) -> dict[str, bool]:
        rows = [row_for(d.event, await self.details.of(d.event)) for d in chunk]
        mention = _mentions(chunk)
        delivered = await self.notifier.post_digest(channel, rows, mention=mention)
        if delivered.ts is None:
            reason = delivered.refused or "unknown"
            if reason in UNDELIVERABLE:
                gone[channel] = reason
            else:
                refused.add(channel)
                stats.post_failures += len(chunk)
            return await self._refused_before(chunk, channel, stats, gone)
        now = self.store.now()
        record = DigestRecord(channel_id=channel, ts=delivered.ts, created_at=now, updated_at=now, mention=mention)
        keys = [d.key for d in chunk]
        self._unsaved.append((record, rows, keys))  # until saved: Slack has it, never post it again
        self.unsaved_keys.update(keys)
        await self.save_unsaved()
        self._count(stats, len(chunk))
        log.info("digest posted", extra={"channel_id": channel, "failures": len(chunk)})
        return {key: True for key in keys}

    async def save_unsaved(self) -> None:
        while self._unsaved:
            record, rows, keys = self._unsaved[0]
            await self.store.digests.save(record, rows)
            self._unsaved.pop(0)
            self.unsaved_keys.difference_update(keys)

    def _count(self, stats: KindStats, rows: int) -> None:
        stats.alerts += rows
        stats.digested += rows

    async def _release(self, due: Sequence[Due]) -> None:
        for d in due:
            try:
                await self.store.claims.release(d.key, d.holder)
            except Exception as exc:  # noqa: BLE001 - the claim expires by itself (CLAIM_WINDOW)
                log.warning("watcher: could not release the claim on %s: %s", d.key, type(exc).__name__)
