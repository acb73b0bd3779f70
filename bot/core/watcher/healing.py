"""A broken git webhook seen working again by the watcher: a push through it started its
pipeline while the series' alert (a trigger failure, Check again) is open. The alert is redrawn
at once with since when and the offer to rerun the pushes it missed, without anyone clicking
Check again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.codestream.models import Event, EventKind, GitEvent
from bot.core.failures import FailureContext
from bot.core.ports import AlertNotifier
from bot.core.requests import MessageRef
from bot.core.webhook_recovery import Recovery
from bot.store import Store

log = logging.getLogger("bot.core.watcher")


class WebhookHealing:
    def __init__(
        self,
        store: Store,
        notifier: AlertNotifier,
        read_event: Callable[[EventKind, str], Awaitable[Event]],
        details: Callable[[Event], Awaitable[FailureContext | None]],
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.read_event = read_event
        self.details = details
        self._shown: set[tuple[str, str]] = set()  # alerts already redrawn by this process

    async def saw(self, series: str, event: Event, *, since: datetime) -> None:
        """``event`` of ``series`` started its pipeline: if the series' open alert is a broken
        webhook's, it shows the webhook works again. Best effort: logged, never raised."""
        if not isinstance(event, GitEvent) or event.trigger_failed or not event.execution_link:
            return
        try:
            root = await self.store.alerts.open_for_series(series, since=since)
            if root is None or root.kind != "git" or root.execution_index is not None:
                return  # no open alert, or one of a pipeline that failed (it has its Rerun)
            if (root.channel_id, root.ts) in self._shown:
                return
            self._shown.add((root.channel_id, root.ts))
            broken = await self.read_event("git", root.event_id)
            if not broken.trigger_failed:
                return  # rerun already: its alert shows that
            thread = await self.store.alerts.in_thread(root.channel_id, root.ts)
            missed = 1 + sum(1 for r in thread if r.kind == "git" and r.execution_index is None)
            failure = await self.details(broken)
            recovery = Recovery(
                working=True, since=event.updated, how="push", webhook=failure.webhook if failure else None
            )
            ref = MessageRef(root.channel_id, root.ts, root.ts)
            await self.notifier.show_recovery(ref, broken, recovery=recovery, missed=missed, record=root)
        except Exception as exc:  # noqa: BLE001 - the alert still offers Check again
            log.warning("watcher: could not show the webhook working again: %s", type(exc).__name__)
