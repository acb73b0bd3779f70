"""What someone asked of an execution (ControlRequest) and what came of it (ControlOutcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, TypeAlias

from bot.codestream.errors import CodeStreamError
from bot.codestream.events import EventKind
from bot.codestream.executions import Execution
from bot.core.errors import BotError
from bot.core.requests import Actor, Surface, new_request_id
from bot.core.verbs import CONTROLS, ControlSpec, ControlVerb

# done: Code Stream took it (the execution shows it, or answered 2xx). failed: a definite no
# (4xx, the status does not allow it, unknown id). not_started: nothing was sent, or a read-back
# showed it did not take effect by the deadline: safe to try again. unknown: it may have
# arrived; the execution is read back until the deadline. duplicate: someone else's request on
# this execution is in flight. denied: access control.
ControlStatus: TypeAlias = Literal["done", "failed", "unknown", "not_started", "duplicate", "denied"]


#: The audit rows' ``kind`` for an action on an execution (``event_id`` holds the execution id).
EXECUTION_KIND: Final = "execution"


class NotActionable(BotError):
    """The execution's status does not allow the action (already canceled, not paused...)."""

    default_message = "The execution cannot do that in its current status."


@dataclass(frozen=True)
class ControlRequest:
    verb: ControlVerb
    execution_id: str
    actor: Actor
    surface: Surface
    channel_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    team_id: str | None = None
    # The kind of event whose execution it is, when the bot follows it (access rules by kind).
    kind: EventKind | None = None

    @property
    def spec(self) -> ControlSpec:
        return CONTROLS[self.verb]


@dataclass(frozen=True)
class PriorControl:
    """The in-flight request a duplicate is pointed to."""

    actor: Actor
    at: datetime
    verb: ControlVerb


@dataclass(frozen=True)
class ControlOutcome:
    request: ControlRequest
    status: ControlStatus
    execution: Execution | None = None  # as last read (after the action when it was done)
    execution_url: str | None = None
    error: CodeStreamError | BotError | None = None
    prior: PriorControl | None = None
    action_id: int | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    settle_by: datetime | None = None
    settled_late: bool = False  # found by reading the execution back after an unknown outcome

    @property
    def pipeline(self) -> str | None:
        return pipeline_of(self.execution)


def pipeline_of(execution: Execution | None) -> str | None:
    """The pipeline's name: an execution's ``name`` is the pipeline's, sometimes with ``#index``."""
    if execution is None or not execution.name:
        return None
    name = execution.name
    head, sep, tail = name.rpartition("#")
    return head if sep and tail.isdigit() and head else name
