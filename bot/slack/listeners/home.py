"""The App Home tab: ``app_home_opened`` publishes it; its Rerun/Resume buttons arrive with the
alerts' action ids and are told apart by their container (a view, not a message)."""

from __future__ import annotations

from typing import Any, Final

from slack_bolt.async_app import AsyncApp

from bot.slack.home import HomeTabs

MANIFEST_HOME_EVENTS: Final = ("app_home_opened",)


def register(app: AsyncApp, home: HomeTabs) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt acks events itself; the Messages tab and re-deliveries need nothing.
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return
        if not await home.surfaces.first_delivery(body.get("event_id")):
            return
        team = event.get("view", {}).get("team_id") if isinstance(event.get("view"), dict) else None
        await home.opened(user, team if isinstance(team, str) else body.get("team_id"))
