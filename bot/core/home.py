"""What a person's App Home tab reads: the failures they may see that are still unresolved, the
actions they took, and whether this replica is the one to publish their tab now."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.codestream.models import EVENT_KINDS, Event, as_kind
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.recent_failures import RecentFailures
from bot.core.requests import new_request_id
from bot.store import ActionRecord, Store

log = logging.getLogger(__name__)


def _scope(row: ActionRecord) -> Scope:
    # As the audit trail reads it: a row of a pipeline run, an execution or an approval names no
    # event kind, so a rule limited to kinds does not decide it one way here and another there.
    return Scope(as_kind(row.kind), row.project, row.pipeline)


@dataclass(frozen=True)
class HomeQueries:
    store: Store
    failures: RecentFailures
    access: AccessPolicy

    async def may_publish(self, user_id: str, seconds: float) -> bool:
        """False when another replica (or this one) published this person's tab less than
        ``seconds`` ago; True when the store cannot say (logged: the tab is published anyway)."""
        try:
            return (await self.store.claims.claim(f"home:{user_id}", new_request_id(), seconds)).won
        except Exception as exc:  # noqa: BLE001 - logged; the tab is published anyway
            log.warning("home: claim failed; publishing", extra={"error_class": type(exc).__name__})
            return True

    async def open_failures(self, viewer: Viewer, since: datetime) -> list[Event]:
        """The failures ``viewer`` may see, updated since ``since``, whose alert's series has not
        passed since (a fix pushed, a rerun from vRA); CodeStreamError when Code Stream cannot be read."""
        visible = await self.failures.visible(viewer, EVENT_KINDS)
        recent = [e for e in visible if e.updated is None or e.updated >= since]
        return [e for e in recent if not await self._resolved(e)]

    async def actions_of(self, viewer: Viewer, since: datetime, *, scan: int) -> list[ActionRecord]:
        """The newest of ``viewer``'s own actions since ``since`` (``scan`` rows read), those
        they may still see."""
        rows = await self.store.actions.list(since=since, actor_id=viewer.user_id, limit=scan)
        return [r for r in rows if await self.access.may_see(viewer, _scope(r))]

    async def _resolved(self, event: Event) -> bool:
        assert event.id is not None
        alert = await self.store.alerts.get(event.kind, event.id, event.execution_index)
        return alert is not None and alert.resolved_at is not None
