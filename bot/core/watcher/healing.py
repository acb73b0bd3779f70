"""A broken git webhook seen working again by the watcher: a push through it started its
pipeline (or one failed in its pipeline: it was started) while the series' alert (a trigger
failure, with Check again) is open. The alert is redrawn at once with since when and the offer
to rerun the pushes it missed, without anyone clicking Check again — judged by the same
``WebhookRecovery.assess`` as the button, so the two never disagree."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.codestream.models import Event, EventKind, GitEvent
from bot.core.ports import AlertNotifier
from bot.core.requests import MessageRef
from bot.core.webhook_recovery import WebhookRecovery
from bot.store import AlertRecord, Store

log = logging.getLogger("bot.core.watcher")


class WebhookHealing:
    def __init__(
        self,
        store: Store,
        notifier: AlertNotifier,
        recovery: WebhookRecovery,
        read_event: Callable[[EventKind, str], Awaitable[Event]],
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.recovery = recovery
        self.read_event = read_event
        self._shown: set[tuple[str, str]] = set()  # alerts this process redrew as working

    async def saw(self, series: str, event: Event, *, since: datetime) -> None:
        """``event`` of ``series`` started its pipeline: if the series' open alert is a broken
        webhook's and the webhook works again, the alert says so. Best effort: never raises."""
        if not isinstance(event, GitEvent) or event.trigger_failed or not event.execution_link:
            return
        try:
            root = await self.store.alerts.open_for_series(series, since=since)
            if root is None or (root.channel_id, root.ts) in self._shown:
                return
            await self.redraw_if_working(root)
        except Exception as exc:  # noqa: BLE001 - the alert still offers Check again
            log.warning("watcher: could not show the webhook working again: %s", type(exc).__name__)

    async def redraw_if_working(self, root: AlertRecord) -> bool:
        """Redraw ``root`` (if it is a broken webhook's alert) as working again, when it is; True
        when it was redrawn. Raises when Code Stream or the store cannot be read."""
        if root.kind != "git" or root.execution_index is not None:
            return False  # the alert of a pipeline that failed: it has its Rerun
        broken = await self.read_event("git", root.event_id)
        assessment = await self.recovery.assess(broken, root)
        if not assessment.recovery.working:
            return False
        self._shown.add((root.channel_id, root.ts))
        ref = MessageRef(root.channel_id, root.ts, root.ts)
        await self.notifier.show_recovery(
            ref, broken, recovery=assessment.recovery, missed=len(assessment.missed), record=root
        )
        return True
