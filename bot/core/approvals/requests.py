"""What someone decided on a Code Stream approval (DecisionRequest) and what came of it
(DecisionOutcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, TypeAlias

from bot.codestream.errors import CodeStreamError
from bot.codestream.user_operations import Decision, UserOperation
from bot.core.errors import AccessDenied, BotError
from bot.core.intents import INTENT_PREFIX
from bot.core.requests import Actor, Surface, new_request_id

#: Audit rows of decisions: kind ``approval``, the operation id in ``event_id``.
APPROVAL_KIND: Final = "approval"
ACTION_OF: Final[dict[Decision, str]] = {"APPROVED": "approve", "REJECTED": "reject"}

# done: Code Stream took the decision. ended: it was no longer pending (decided in vRA,
# expired, canceled): nothing was sent. The others as for reruns.
DecisionStatus: TypeAlias = Literal["done", "failed", "unknown", "not_started", "duplicate", "denied", "ended"]


class NotAnApprover(AccessDenied):
    """The policy allows it, but the operation does not list this person."""


@dataclass(frozen=True)
class DecisionRequest:
    operation_id: str
    decision: Decision
    message: str
    actor: Actor
    surface: Surface
    email: str | None = None  # the person's Slack e-mail (users.info, users:read.email)
    channel_id: str | None = None
    team_id: str | None = None
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class DecisionOutcome:
    request: DecisionRequest
    status: DecisionStatus
    operation: UserOperation | None = None
    error: CodeStreamError | BotError | None = None
    prior_actor: str | None = None  # duplicate: who is deciding it
    action_id: int | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def approval_intent_key(operation_id: str) -> str:
    return f"{INTENT_PREFIX}{APPROVAL_KIND}:{operation_id}"
