"""Bolt listeners grouped by kind, each module with ``register(app, surfaces)``. Listeners are
thin: ack first, pull the fields out of the payload, hand over to ``bot.slack.handlers``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.handlers import Surfaces
from bot.slack.listeners import actions, commands, events

COMMAND = commands.COMMAND


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    commands.register(app, surfaces)
    actions.register(app, surfaces)
    events.register(app, surfaces)
