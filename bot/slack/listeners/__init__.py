"""Every Bolt listener, registered by what Slack sends. A listener is a module-level function
taking the ``Handlers`` first, then Bolt's ``args``: it reads the payload once into an
``Interaction`` and starts its work with ``InteractionContext.start`` (ack first, then the work
in a task of its own). Each listener module ends with its table: the action ids (or callback
ids, or events) it takes, spelled out, so a grep for an action id lands on its row; the
renderers draw the same ids (``tests/slack/test_listeners.py`` keeps the two in step)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import alerts, approvals, digests, events, executions, home, runs, webhooks
from bot.slack.listeners.commands import COMMAND, on_command
from bot.slack.listeners.handlers import Handlers, Listener

__all__ = ["COMMAND", "Handlers", "register"]

#: Each action id, and its listener.
ACTIONS: dict[str, Listener] = {
    **alerts.ACTIONS,
    **digests.ACTIONS,
    **executions.ACTIONS,
    **approvals.ACTIONS,
    **webhooks.ACTIONS,
}


def register(app: AsyncApp, handlers: Handlers) -> None:
    def on(listener: Listener) -> Callable[..., Awaitable[None]]:
        """The listener with the handlers bound (Bolt passes ``args`` by its name)."""
        return partial(listener, handlers)

    app.command(COMMAND)(on(on_command))
    for action_id, listener in ACTIONS.items():
        app.action(action_id)(on(listener))
    for callback_id, listener in {**approvals.VIEWS, **runs.VIEWS}.items():
        app.view(callback_id)(on(listener))
    for callback_id, listener in runs.FUNCTIONS.items():
        app.function(callback_id)(on(listener))
    for event, listener in {**events.EVENTS, **home.EVENTS}.items():
        app.event(event)(on(listener))
