"""Alerts Slack refuses for good — the bot is not in the channel, the channel is gone or
archived, posting is restricted — must neither hold the watcher's cursor for ever (every poll
re-listing more and more events, and nothing alerted anywhere) nor be lost.

Such an alert is kept in the store (``undelivered_alerts``, shared by replicas) and the cursor
moves on. Each watcher cycle retries the ones that are due, with backoff (1 min doubling to 1 h),
until ``give_up_after``. Each refusal is counted (``codestream_bot_alerts_undeliverable_total
{channel,reason}``) and logged once per channel per interval, saying what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.models import Event, EventKind, as_kind
from bot.core import metrics
from bot.store import Store, UndeliveredAlert

log = logging.getLogger(__name__)

#: Slack errors that do not go away by retrying in a minute.
UNDELIVERABLE: Final = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_post_in_channel"}
)
FIRST_RETRY: Final = 60.0
MAX_RETRY: Final = 3600.0
LOG_EVERY: Final = 600.0

_ADVICE: Final = {
    "not_in_channel": "invite the bot to the channel (/invite @codestream-bot)",
    "channel_not_found": "check the channel in BOT_CONFIG / BOT_ALERT_CHANNEL, or invite the bot (private channel)",
    "is_archived": "unarchive the channel or route its alerts elsewhere",
    "restricted_action": "let apps post in the channel (channel settings) or route its alerts elsewhere",
}

MOOT: Final = "moot"  # a repost answer: nothing to post any more (rerun, fixed, or alerted meanwhile)
# Posts one alert again: None when Slack took it (and it is saved), MOOT, or why not.
Repost = Callable[[Event, UndeliveredAlert], Awaitable[str | None]]


def advice(reason: str) -> str:
    return _ADVICE.get(reason, "check the channel and the bot's scopes")


class UndeliveredAlerts:
    def __init__(
        self, store: Store, read_event: Callable[[EventKind, str], Awaitable[Event]], *, give_up_after: float
    ) -> None:
        self.store = store
        self.read_event = read_event
        self.give_up_after = timedelta(seconds=give_up_after)
        self.first_retry = FIRST_RETRY
        self._logged: dict[str, float] = {}  # channel -> when it was last logged

    async def hold(
        self,
        key: str,
        event: Event,
        *,
        channel: str,
        thread_ts: str | None,
        mention: str | None,
        reason: str,
    ) -> None:
        assert event.id is not None
        now = self.store.now()
        await self.store.undelivered.hold(
            UndeliveredAlert(
                key=key,
                kind=event.kind,
                event_id=event.id,
                execution_index=event.execution_index,
                channel_id=channel,
                thread_ts=thread_ts,
                mention=mention,
                reason=reason,
                first_at=now,
                next_try_at=now + timedelta(seconds=self.first_retry),
                give_up_at=now + self.give_up_after,
            )
        )
        self.refused(channel, reason)

    def refused(self, channel: str, reason: str) -> None:
        metrics.ALERTS_UNDELIVERABLE.labels(channel, reason).inc()
        mono = time.monotonic()
        if mono - self._logged.get(channel, float("-inf")) >= LOG_EVERY:
            self._logged[channel] = mono
            log.warning(
                "alerts cannot be posted to <#%s> (%s): %s; they are kept and retried",
                channel,
                reason,
                advice(reason),
                extra={"channel_id": channel, "slack_error": reason},
            )

    async def retry_due(self, repost: Repost, now: datetime) -> int:
        """Post the alerts whose retry is due; returns how many Slack took."""
        posted = 0
        for held in await self.store.undelivered.due(now):
            if now >= held.give_up_at:
                await self.store.undelivered.drop(held.key)
                log.warning(
                    "gave up posting an alert to <#%s> (%s) after %s tries",
                    held.channel_id,
                    held.reason,
                    held.tries,
                    extra={"channel_id": held.channel_id, "event_id": held.event_id},
                )
                continue
            kind = as_kind(held.kind)
            try:
                event = await self.read_event(kind or "git", held.event_id)
            except (NotFound, InvalidId):
                await self.store.undelivered.drop(held.key)  # the event is gone: nothing to alert
                continue
            except CodeStreamError:
                await self._later(held, now, held.reason)
                continue
            try:
                why = await repost(event, held)
            except Exception as exc:  # noqa: BLE001 - one row must not stall the others or the cycle
                log.warning("re-posting an alert failed", extra={"error_class": type(exc).__name__})
                await self._later(held, now, held.reason)
                continue
            if why == MOOT:
                await self.store.undelivered.drop(held.key)
                continue
            if why == "claimed":
                await self._later(held, now, held.reason)  # another replica is on it
                continue
            if why is None:
                await self.store.undelivered.drop(held.key)
                posted += 1
            else:
                if why in UNDELIVERABLE:
                    self.refused(held.channel_id, why)
                await self._later(held, now, why)
        return posted

    async def _later(self, held: UndeliveredAlert, now: datetime, reason: str) -> None:
        delay = min(MAX_RETRY, self.first_retry * 2 ** min(held.tries, 10))
        changes = {"tries": held.tries + 1, "reason": reason, "next_try_at": now + timedelta(seconds=delay)}
        await self.store.undelivered.hold(held.model_copy(update=changes))


async def describe_undelivered(store: Store) -> str:
    """``ok``, or what waits where and what to do (for /readyz and ``check``)."""
    waiting = await store.undelivered.by_channel()
    if not waiting:
        return "ok"
    parts = [
        f"{count} for {channel} ({reason}: {advice(reason)})" for (channel, reason), count in sorted(waiting.items())
    ]
    return f"{sum(waiting.values())} alerts Slack refused, kept and retried: " + "; ".join(parts)
