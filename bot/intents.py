"""The Slack-free vocabulary of the core: what someone asked for (ActionRequest) and what came of
it (Outcome). Listeners build requests; ``perform`` returns outcomes; renderers draw them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, TypeAlias

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import CodeStreamAction, Event, EventKind, Execution
from bot.errors import BotError

Verb: TypeAlias = Literal["rerun", "resume", "show"]
CODESTREAM_ACTION: Final[dict[Verb, CodeStreamAction]] = {"rerun": "Rerun", "resume": "Resume"}

Surface: TypeAlias = Literal["slash", "button", "thread", "mention", "cli"]

# started: Code Stream accepted it. failed: a definite error. unknown: it may have gone through.
# not_started: it certainly did not (safe to retry). duplicate: someone did it moments ago.
# denied: access control said no. shown: a read-only "show".
OutcomeStatus: TypeAlias = Literal["started", "failed", "unknown", "not_started", "duplicate", "denied", "shown"]


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Actor:
    user_id: str
    name: str | None = None  # display name, when known


@dataclass(frozen=True)
class ActionRequest:
    verb: Verb
    kind: EventKind
    event_id: str
    actor: Actor
    surface: Surface
    channel_id: str | None = None
    request_id: str = field(default_factory=new_request_id)


@dataclass(frozen=True)
class PriorAction:
    """The earlier, winning request a duplicate is pointed to."""

    actor: Actor
    at: datetime
    status: str
    execution_url: str | None = None


@dataclass(frozen=True)
class Outcome:
    request: ActionRequest
    status: OutcomeStatus
    event: Event | None = None  # the event as last read (after the action when it started)
    execution: Execution | None = None
    execution_url: str | None = None  # human UI link of the (new) execution
    error: CodeStreamError | BotError | None = None
    prior: PriorAction | None = None  # for duplicates
    action_id: int | None = None  # audit row
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
