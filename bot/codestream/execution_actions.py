"""Acting on a running execution: ``POST /codestream/api/executions/{id}?action=pause|resume|cancel``
with an ``ExecutionActionRequest {reason}``, and how to tell from a read of the execution
whether an action took effect (what an ambiguous answer is resolved by)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from bot.codestream.errors import CodeStreamError
from bot.codestream.executions import TERMINAL_STATUSES, Execution

ExecutionAction: TypeAlias = Literal["cancel", "pause", "resume"]

#: Reason strings are free text in the spec; long ones are cut (Code Stream shows them in its UI).
MAX_REASON: Final = 500

#: The statuses an execution shows once the action took effect (vRA moves through the -ING
#: status to the final one; either proves the request arrived).
_EFFECT: Final[dict[ExecutionAction, frozenset[str]]] = {
    "cancel": frozenset({"CANCELING", "CANCELED"}),
    "pause": frozenset({"PAUSING", "PAUSED"}),
}
#: Where each action may start from. A cancel stops a paused execution too.
ACTIONABLE_FROM: Final[dict[ExecutionAction, frozenset[str]]] = {
    "cancel": frozenset({"RUNNING", "WAITING", "QUEUED", "STARTED", "NOT_STARTED", "PAUSED", "PREPARING_WORKSPACE"}),
    "pause": frozenset({"RUNNING", "WAITING", "QUEUED", "STARTED", "NOT_STARTED", "PREPARING_WORKSPACE"}),
    "resume": frozenset({"PAUSED"}),
}


class ExecutionActionRequest(BaseModel):
    """The spec's ``ExecutionActionRequest`` (``tags`` is for ``action=tag``, not sent here)."""

    model_config = ConfigDict(extra="forbid")

    reason: str


def status_of(execution: Execution | None) -> str:
    return (execution.status or "").strip().upper() if execution is not None else ""


def took_effect(action: ExecutionAction, after: Execution | None) -> bool:
    """Whether ``after`` (the execution read after the POST) shows the action applied."""
    status = status_of(after)
    if not status:
        return False
    if action == "resume":
        # Resumed: no longer paused (RESUMING, RUNNING...), or already run to its end — but not
        # canceled meanwhile: someone else's cancel is not our resume taking effect.
        return status not in ("PAUSED", "PAUSING", "CANCELED", "CANCELING")
    return status in _EFFECT[action]


def can_start(action: ExecutionAction, execution: Execution) -> bool:
    return status_of(execution) in ACTIONABLE_FROM[action]


def is_over(execution: Execution) -> bool:
    return status_of(execution) in TERMINAL_STATUSES


ExecutionActionState = Literal["succeeded", "not_started", "unknown"]


@dataclass(frozen=True)
class ExecutionActionResult:
    """What a pause/resume/cancel did: ``succeeded`` (Code Stream accepted it; ``execution`` as
    it answered or was read back), ``not_started`` (nothing was sent; safe to try again) or
    ``unknown`` (it may have arrived and no read showed it applied yet)."""

    state: ExecutionActionState
    before: Execution
    execution: Execution | None = None
    error: CodeStreamError | None = None
