"""The listeners' registration: every id the renderers draw reaches exactly one listener, each a
module-level function of ``bot.slack.listeners``, and each action id is spelled out in its
listener module (a grep for it lands on the row that registers it)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bot.core.verbs import CONTROLS, MUTATING
from bot.slack import listeners
from bot.slack.listeners import alerts, approvals, digests, executions, webhooks
from bot.slack.listeners.commands import COMMAND
from bot.slack.listeners.events import REGISTERED_EVENTS
from bot.slack.listeners.home import MANIFEST_HOME_EVENTS
from bot.slack.manifest import FUNCTIONS
from bot.slack.render.approval import ACTION_APPROVE, ACTION_REJECT, DECISION_VIEW
from bot.slack.render.buttons import ACTION_OPEN, ACTION_RERUN, ACTION_RESUME
from bot.slack.render.digest import ACTION_DIGEST_ROW, ACTION_RERUN_ALL
from bot.slack.render.mute import ACTION_MUTE
from bot.slack.render.run import RUN_FORM
from bot.slack.render.webhook_alert import ACTION_RERUN_MISSED, ACTION_RERUN_NEWEST, ACTION_WEBHOOK_CHECK

LISTENERS = Path(listeners.__file__).parent


class RecordingApp:
    """Stands in for Bolt's AsyncApp: what ``register`` registers, by kind and id."""

    def __init__(self) -> None:
        self.registered: dict[str, list[tuple[str, Any]]] = {
            "command": [],
            "action": [],
            "view": [],
            "event": [],
            "function": [],
        }

    def _decorator(self, kind: str, key: str) -> Callable[[Any], Any]:
        def add(listener: Any) -> Any:
            self.registered[kind].append((key, listener))
            return listener

        return add

    def command(self, key: str) -> Callable[[Any], Any]:
        return self._decorator("command", key)

    def action(self, key: str) -> Callable[[Any], Any]:
        return self._decorator("action", key)

    def view(self, key: str) -> Callable[[Any], Any]:
        return self._decorator("view", key)

    def event(self, key: str) -> Callable[[Any], Any]:
        return self._decorator("event", key)

    def function(self, key: str) -> Callable[[Any], Any]:
        return self._decorator("function", key)


def registered() -> dict[str, list[tuple[str, Any]]]:
    app = RecordingApp()
    listeners.register(app, handlers=object())  # type: ignore[arg-type]  # bound, never called here
    return app.registered


def test_every_id_the_renderers_draw_reaches_one_listener() -> None:
    drawn = {
        *(verb.button_action_id for verb in MUTATING if verb.button_action_id),
        *(spec.button_action_id for spec in CONTROLS.values()),
        ACTION_RERUN,
        ACTION_RESUME,
        ACTION_OPEN,
        ACTION_MUTE,
        ACTION_DIGEST_ROW,
        ACTION_RERUN_ALL,
        ACTION_APPROVE,
        ACTION_REJECT,
        ACTION_WEBHOOK_CHECK,
        ACTION_RERUN_NEWEST,
        ACTION_RERUN_MISSED,
    }
    found = registered()
    actions = [key for key, _ in found["action"]]
    assert sorted(actions) == sorted(drawn)  # each once: none missing, none extra
    tables = (alerts.ACTIONS, digests.ACTIONS, executions.ACTIONS, approvals.ACTIONS, webhooks.ACTIONS)
    assert sum(len(t) for t in tables) == len(actions)  # no module's id hides another's
    assert [key for key, _ in found["view"]] == [DECISION_VIEW, RUN_FORM]
    assert [key for key, _ in found["function"]] == list(FUNCTIONS)  # the manifest's custom steps
    assert [key for key, _ in found["command"]] == [COMMAND]
    assert sorted(key for key, _ in found["event"]) == sorted({*REGISTERED_EVENTS, *MANIFEST_HOME_EVENTS})


def test_each_listener_is_a_module_level_function_of_the_listeners() -> None:
    for kind, rows in registered().items():
        for key, listener in rows:
            function = listener
            while isinstance(function, partial):
                function = function.func
            assert inspect.iscoroutinefunction(function), (kind, key)
            assert function.__module__.startswith("bot.slack.listeners."), (kind, key)
            assert "<locals>" not in function.__qualname__, (kind, key)


def test_each_action_id_is_spelled_out_beside_its_listener() -> None:
    sources = {path.name: path.read_text(encoding="utf-8") for path in LISTENERS.glob("*.py")}
    for key, _ in registered()["action"] + registered()["view"] + registered()["function"]:
        modules = [name for name, text in sources.items() if f'"{key}"' in text]
        assert modules != [] and modules != ["__init__.py"], key  # grep finds the listener's row
