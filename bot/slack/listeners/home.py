"""The App Home tab: ``app_home_opened`` publishes it; its Rerun/Resume buttons arrive with the
alerts' action ids and are told apart by their container (a view, not a message:
``bot.slack.listeners.alerts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener

MANIFEST_HOME_EVENTS: Final = ("app_home_opened",)


async def on_home_opened(handlers: Handlers, args: AsyncArgs) -> None:
    # Bolt acks events itself; the Messages tab needs nothing.
    event = args.event or {}
    user = event.get("user")
    if event.get("tab") != "home" or not isinstance(user, str) or not user:
        return
    view = event.get("view")
    team = view.get("team_id") if isinstance(view, dict) else None
    team_id = team if isinstance(team, str) else args.body.get("team_id")
    channel = event.get("channel")  # the app's DM with the person: where an apology would go
    where = channel if isinstance(channel, str) else None
    interaction = Interaction(user_id=user, surface="button", channel_id=where, team_id=team_id)
    event_id = args.body.get("event_id")
    await handlers.context.start(
        None, args.request, interaction, lambda: handlers.home.opened(user, team_id), event_id=event_id
    )


EVENTS: Final[Mapping[str, Listener]] = {"app_home_opened": on_home_opened}
