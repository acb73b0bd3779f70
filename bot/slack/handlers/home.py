"""The App Home tab of each person: published when they open it (at most once per person per
``min_interval``, across replicas), and again after they act from it, with the outcome. It shows
only what the access policy lets them see (outside any channel: rules limited to channels do not
apply here)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event, EventKind
from bot.core.home import HomeQueries
from bot.core.verbs import Verb
from bot.slack.context import InteractionContext
from bot.slack.handlers.event_actions import EventActions
from bot.slack.interaction import Interaction
from bot.slack.render.alert import execution_urls
from bot.slack.render.home import MAX_ACTIONS, render_home
from bot.slack.render.messages import render_outcome
from bot.slack.render.text import strip_links

log = logging.getLogger(__name__)

MIN_INTERVAL: Final = 30.0  # seconds between two publishes of one person's tab on opening it
MAX_CACHED: Final = 5000  # people whose rendered view is kept (pruned to the interval's beyond it)
FAILURE_WINDOW: Final = timedelta(hours=24)
ACTIONS_WINDOW: Final = timedelta(days=7)

#: The bot's health as the App Home shows it: part → state ("ok", or what is wrong).
Health = Callable[[], Awaitable[dict[str, str]]]


@dataclass
class HomeTab:
    """Publishes each person's App Home tab, and acts from its buttons."""

    context: InteractionContext
    queries: HomeQueries
    actions: EventActions
    web: AsyncWebClient
    execution_link: Callable[[str | None], str | None]
    health: Health
    min_interval: float = MIN_INTERVAL
    # The view last rendered for each person, and when: an open within the interval publishes
    # nothing (Slack keeps showing it).
    _views: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict, init=False, repr=False)

    async def opened(self, user_id: str, team_id: str | None) -> None:
        """``app_home_opened`` on the Home tab: publish, unless it was published a moment ago
        (here, or by another replica)."""
        cached = self._views.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < self.min_interval:
            return
        if await self.queries.may_publish(user_id, self.min_interval):
            await self.publish(user_id, team_id)

    async def act(
        self, verb: Verb, kind: EventKind, event_id: str, interaction: Interaction, *, listed: int | None = None
    ) -> None:
        """A Rerun/Resume button on the tab: perform() once, then the tab again, with the outcome.
        ``listed``: the run the tab showed (a tab stays on screen: a newer run is not rerun)."""
        outcome = await self.actions.from_home(verb, kind, event_id, interaction, expected_index=listed)
        note = strip_links(render_outcome(outcome, now=datetime.now(UTC)).text)
        alert = outcome.request.alert
        if alert is not None and outcome.status not in ("denied", "duplicate"):
            note += f"\nThe summary is in the alert's thread in <#{alert.channel}>."
        await self.publish(interaction.user_id, interaction.team_id, note=note)

    async def publish(self, user_id: str, team_id: str | None, *, note: str | None = None) -> bool:
        view = await self.render(user_id, team_id, note=note)
        try:
            await self.web.views_publish(user_id=user_id, view=view)
        except Exception as exc:  # noqa: BLE001 - logged; the next open tries again
            log.warning("views.publish failed", extra={"user_id": user_id, "error_class": type(exc).__name__})
            return False
        moment = time.monotonic()
        if len(self._views) >= MAX_CACHED:  # only the views of the interval matter
            self._views = {u: v for u, v in self._views.items() if moment - v[0] < self.min_interval}
        self._views[user_id] = (moment, view)
        return True

    async def render(self, user_id: str, team_id: str | None, *, note: str | None = None) -> dict[str, Any]:
        # The person's home workspace from users.info (a Slack Connect guest's is their own), as
        # every other surface does; the payload's team is the app's, only a hint.
        viewer = await self.context.viewer(Interaction(user_id=user_id, surface="button", team_id=team_id))
        at = datetime.now(UTC)
        failures: list[Event] | None
        error = None
        try:
            failures = await self.queries.open_failures(viewer, at - FAILURE_WINDOW)
        except CodeStreamError as exc:
            failures, error = None, exc.user_message
        mine = await self.queries.actions_of(viewer, at - ACTIONS_WINDOW, scan=MAX_ACTIONS * 3)
        return render_home(
            failures,
            execution_urls=execution_urls(failures or [], self.execution_link),
            actions=mine[:MAX_ACTIONS],
            health=await self._health(),
            now=at,
            note=note,
            failures_error=error,
        )

    async def _health(self) -> dict[str, str]:
        try:
            return await self.health()
        except Exception as exc:  # noqa: BLE001 - shown, never raised
            return {"bot": f"health unavailable ({type(exc).__name__})"}
