"""Execution control: cancel, pause and resume a running execution from Slack, exactly once,
through the one intent lifecycle (``perform``: the adapter), settled by the reconciler when Code
Stream's answer was ambiguous (``readback``). Its actions are entries of the one action
registry, ``bot.core.verbs`` (``CONTROLS``)."""

from bot.core.control.perform import ExecutionControl, execution_intent_key
from bot.core.control.requests import (
    EXECUTION_KIND,
    ControlOutcome,
    ControlRequest,
    ControlStatus,
    NotActionable,
    PriorControl,
)

__all__ = [
    "EXECUTION_KIND",
    "ControlOutcome",
    "ControlRequest",
    "ControlStatus",
    "ExecutionControl",
    "NotActionable",
    "PriorControl",
    "execution_intent_key",
]
