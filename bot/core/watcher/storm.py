"""Storms: when more than ``threshold`` failures are due for one channel within ``window``
seconds (counting the alerts it got in that window), the new ones are listed in one digest
message instead of one alert each; while that digest keeps taking failures (within the window),
later ones join it. A series' repeat or a rerun that failed again still goes in its own thread.

Each failure is claimed as for an alert (``alert:{kind}:{id}:{index}``) before it waits for the
digest; the digest is posted (or redrawn) at the end of the kind's cycle and saved with one
alert per row in one transaction, so a failure is listed once, on any replica, and one whose
digest could not be posted is released and tried again next cycle (the cursor waits for it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
        """Before a kind's new events are handled: which channels are in a storm this cycle.
        Costs one store read per channel with new failures, nothing when there are none."""
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
        since = self.store.now() - timedelta(seconds=self.window)
        for channel, count in due.items():
            recent, digest = await self.store.channel_load(channel, since=since)
            if digest is not None or recent + count > self.threshold:
                self._channels[channel] = ChannelStorm(digest)

    def takes(self, channel: str) -> bool:
        return channel in self._channels

    def add(self, channel: str, due: Due) -> None:
        self._channels[channel].due.append(due)

    async def flush(self, stats: KindStats, refused: set[str], gone: dict[str, str]) -> dict[str, bool]:
        """Post or extend each channel's digest: alert key -> whether that failure is done."""
        done: dict[str, bool] = {}
        channels, self._channels = self._channels, {}
        for channel, storm in channels.items():
            if not storm.due:
                continue
            try:
                done |= await self._flush_channel(channel, storm, stats, refused, gone)
            except BaseException:
                await self._release([d for d in storm.due if d.key not in done and d.key not in self.unsaved_keys])
                raise
        return done

    async def abandon(self) -> None:
        """The cycle stopped before the digests went out: let the failures be claimed again."""
        channels, self._channels = self._channels, {}
        for storm in channels.values():
            await self._release(storm.due)

    async def _flush_channel(
        self, channel: str, storm: ChannelStorm, stats: KindStats, refused: set[str], gone: dict[str, str]
    ) -> dict[str, bool]:
        done: dict[str, bool] = {}
        due = list(storm.due)
        if storm.open_digest is not None and storm.open_digest.id is not None:
            read = await self.store.get_digest(storm.open_digest.id)
            room = MAX_ROWS - len(read[1]) if read is not None else 0
            if room > 0 and read is not None:
                taken, due = due[:room], due[room:]
                rows = [row_for(d.event, await self.details.of(d.event)) for d in taken]
                await self.store.add_digest_rows(read[0], rows)
                done |= {d.key: True for d in taken}
                self._count(stats, len(taken))
                await self.board.redraw(read[0].id or 0)  # undrawn on failure: drawn next cycle
        while due:
            chunk, due = due[:MAX_ROWS], due[MAX_ROWS:]
            if channel in refused:
                done |= {d.key: False for d in chunk}
                await self._release(chunk)
                continue
            done |= await self._post(channel, chunk, stats, refused, gone)
        return done

    async def _post(
        self, channel: str, chunk: list[Due], stats: KindStats, refused: set[str], gone: dict[str, str]
    ) -> dict[str, bool]:
        rows = [row_for(d.event, await self.details.of(d.event)) for d in chunk]
        mention = _mentions(chunk)
        delivered = await self.notifier.post_digest(channel, rows, mention=mention)
        if delivered.ts is None:
            await self._release(chunk)
            reason = delivered.refused or "unknown"
            if reason in UNDELIVERABLE:  # kept aside one by one, like any alert Slack refuses
                gone[channel] = reason
                for d in chunk:
                    await self.undelivered.hold(
                        d.key, d.event, channel=channel, thread_ts=None, mention=d.mention, reason=reason
                    )
                stats.undeliverable += len(chunk)
                return {d.key: True for d in chunk}
            refused.add(channel)
            stats.post_failures += len(chunk)
            return {d.key: False for d in chunk}
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
            await self.store.save_digest(record, rows)
            self._unsaved.pop(0)
            self.unsaved_keys.difference_update(keys)

    def _count(self, stats: KindStats, rows: int) -> None:
        stats.alerts += rows
        stats.digested += rows

    async def _release(self, due: Sequence[Due]) -> None:
        for d in due:
            try:
                await self.store.release_claim(d.key, d.holder)
            except Exception as exc:  # noqa: BLE001 - the claim expires by itself (CLAIM_WINDOW)
                log.warning("watcher: could not release the claim on %s: %s", d.key, type(exc).__name__)
