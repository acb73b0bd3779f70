"""Execution control: cancel, pause and resume a running execution from Slack, exactly once,
through the intent lifecycle reruns use (``perform``), settled by the reconciler when Code
Stream's answer was ambiguous (``readback``)."""

from bot.core.control.perform import ExecutionControl, execution_intent_key
from bot.core.control.requests import ControlOutcome, ControlRequest, ControlStatus, NotActionable, PriorControl
from bot.core.control.verbs import CONTROLS, EXECUTION_KIND, ControlSpec, ControlVerb, by_control_button, control_spec

__all__ = [
    "CONTROLS",
    "EXECUTION_KIND",
    "ControlOutcome",
    "ControlRequest",
    "ControlSpec",
    "ControlStatus",
    "ControlVerb",
    "ExecutionControl",
    "NotActionable",
    "PriorControl",
    "by_control_button",
    "control_spec",
    "execution_intent_key",
]
