"""The App Home tab of each person: published when they open it (at most once per person per
``min_interval``, across replicas: a short claim in the store), and again after they act from it.
It shows only what the access policy lets them see (outside any channel: rules limited to
channels do not apply here)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, Final

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EVENT_KINDS, Event, EventKind, as_kind
from bot.core.access import Scope
from bot.core.requests import new_request_id
from bot.core.verbs import Verb
from bot.slack.commands.failures import execution_urls, visible_failures
from bot.slack.interaction import Interaction
from bot.slack.render.home import MAX_ACTIONS, render_home
from bot.slack.render.messages import render_outcome
from bot.slack.render.text import strip_links
from bot.slack.surfaces import Surfaces, now
from bot.store import ActionRecord

log = logging.getLogger(__name__)

MIN_INTERVAL: Final = 30.0  # seconds between two publishes of one person's tab on opening it
MAX_CACHED: Final = 5000  # people whose rendered view is kept (pruned to the interval's beyond it)
FAILURE_WINDOW: Final = timedelta(hours=24)
ACTIONS_WINDOW: Final = timedelta(days=7)


def _scope(row: ActionRecord) -> Scope:
    return Scope(as_kind(row.kind) or "git", row.project, row.pipeline)


class HomeTabs:
    def __init__(self, surfaces: Surfaces, *, min_interval: float = MIN_INTERVAL) -> None:
        self.surfaces = surfaces
        self.min_interval = min_interval
        # The view last rendered for each person, and when: an open within the interval
        # publishes nothing (Slack keeps showing it).
        self._views: dict[str, tuple[float, dict[str, Any]]] = {}

    async def opened(self, user_id: str, team_id: str | None) -> None:
        """``app_home_opened`` on the Home tab: publish, unless it was published a moment ago
        (here, or by another replica)."""
        async with self.surfaces.working():
            cached = self._views.get(user_id)
            if cached is not None and time.monotonic() - cached[0] < self.min_interval:
                return
            holder = new_request_id()
            try:
                won = (await self.surfaces.store.claims.claim(f"home:{user_id}", holder, self.min_interval)).won
            except Exception as exc:  # noqa: BLE001 - logged; the tab is published anyway
                log.warning("home: claim failed; publishing", extra={"error_class": type(exc).__name__})
                won = True
            if won:
                await self.publish(user_id, team_id)

    async def act(
        self, verb: Verb, kind: EventKind, event_id: str, interaction: Interaction, *, listed: int | None = None
    ) -> None:
        """A Rerun/Resume button on the tab: perform() once, then the tab again, with the outcome.
        ``listed``: the run the tab showed (a tab stays on screen: a newer run is not rerun)."""
        outcome = await self.surfaces.act_from_home(verb, kind, event_id, interaction, expected_index=listed)
        note = strip_links(render_outcome(outcome, now=now()).text)
        alert = outcome.request.alert
        if alert is not None and outcome.status not in ("denied", "duplicate"):
            note += f"\nThe summary is in the alert's thread in <#{alert.channel}>."
        async with self.surfaces.working():
            await self.publish(interaction.user_id, interaction.team_id, note=note)

    async def publish(self, user_id: str, team_id: str | None, *, note: str | None = None) -> bool:
        view = await self.render(user_id, team_id, note=note)
        try:
            await self.surfaces.delivery.web.views_publish(user_id=user_id, view=view)
        except Exception as exc:  # noqa: BLE001 - logged; the next open tries again
            log.warning("views.publish failed", extra={"user_id": user_id, "error_class": type(exc).__name__})
            return False
        moment = time.monotonic()
        if len(self._views) >= MAX_CACHED:  # only the views of the interval matter
            self._views = {u: v for u, v in self._views.items() if moment - v[0] < self.min_interval}
        self._views[user_id] = (moment, view)
        return True

    async def render(self, user_id: str, team_id: str | None, *, note: str | None = None) -> dict[str, Any]:
        surfaces = self.surfaces
        # The person's home workspace from users.info (a Slack Connect guest's is their own), as
        # every other surface does; the payload's team is the app's, only a hint.
        viewer = await surfaces.viewer(Interaction(user_id=user_id, surface="button", team_id=team_id))
        at = now()
        failures: list[Event] | None
        error = None
        try:
            since = at - FAILURE_WINDOW
            recent = [e for e in await visible_failures(surfaces, viewer, EVENT_KINDS) if (e.updated or at) >= since]
            failures = [e for e in recent if not await self._resolved(e)]
        except CodeStreamError as exc:
            failures, error = None, exc.user_message
        rows = await surfaces.store.actions.list(since=at - ACTIONS_WINDOW, actor_id=user_id, limit=MAX_ACTIONS * 3)
        mine = [r for r in rows if await surfaces.access.may_see(viewer, _scope(r))]
        health = await self._health()
        return render_home(
            failures,
            execution_urls=execution_urls(surfaces, failures or []),
            actions=mine[:MAX_ACTIONS],
            health=health,
            now=at,
            note=note,
            failures_error=error,
        )

    async def _resolved(self, event: Event) -> bool:
        """Its alert's series passed since (a fix pushed, a rerun from vRA)."""
        assert event.id is not None
        alert = await self.surfaces.store.alerts.get(event.kind, event.id, event.execution_index)
        return alert is not None and alert.resolved_at is not None

    async def _health(self) -> dict[str, str]:
        health = self.surfaces.health
        if health is None:
            return {"codestream": "not checked"}
        try:
            return await health()
        except Exception as exc:  # noqa: BLE001 - shown, never raised
            return {"bot": f"health unavailable ({type(exc).__name__})"}
