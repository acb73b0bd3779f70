"""Bolt listeners grouped by kind, each module with ``register(app, surfaces)``. Listeners are
thin: ack first, pull the fields out of the payload, hand over to ``bot.slack.surfaces``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.home import HomeTabs
from bot.slack.listeners import actions, approvals, commands, events, home
from bot.slack.surfaces import Surfaces

COMMAND = commands.COMMAND


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    home_tabs = HomeTabs(surfaces)
    commands.register(app, surfaces)
    actions.register(app, surfaces, home_tabs)
    events.register(app, surfaces)
    home.register(app, home_tabs)
    approvals.register(app, surfaces)
