"""The execution-control verbs (Cancel, Pause, Resume execution) are entries of the one action
registry, ``bot.core.verbs``, with ``target="execution"``; this module names the audit kind."""

from __future__ import annotations

from typing import Final

from bot.core.verbs import CONTROLS, ControlSpec, ControlVerb, by_control_button, control_spec, reason_for

#: The audit rows' ``kind`` for an action on an execution (``event_id`` holds the execution id).
EXECUTION_KIND: Final = "execution"

__all__ = [
    "CONTROLS",
    "EXECUTION_KIND",
    "ControlSpec",
    "ControlVerb",
    "by_control_button",
    "control_spec",
    "reason_for",
]
