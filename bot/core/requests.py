"""The Slack-free vocabulary of the core: what someone asked for (ActionRequest) and what came of
it (Outcome). Listeners build requests; ``perform`` returns outcomes; renderers draw them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event, EventKind, Execution
from bot.core.errors import BotError
from bot.core.verbs import Verb as Verb  # re-exported: requests carry one

Surface: TypeAlias = Literal["slash", "button", "thread", "mention", "cli", "form", "workflow"]

# started: Code Stream accepted it (a new execution). failed: a definite refusal (4xx).
# unknown: the request may have reached Code Stream; it is being read back and the answer is
# updated when that tells. not_started: it certainly did not run (nothing was sent, or no run
# appeared by the reconcile deadline): safe to retry. duplicate: someone's intent is in flight
# or just ended.
# denied: access control said no. shown: a read-only "show".
OutcomeStatus: TypeAlias = Literal["started", "failed", "unknown", "not_started", "duplicate", "denied", "shown"]


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Actor:
    user_id: str
    name: str | None = None  # display name, when known


@dataclass(frozen=True)
class MessageRef:
    """A Slack message, without Slack: the alert an action came from, or a posted summary."""

    channel: str
    ts: str  # the message itself
    thread_ts: str  # the thread to reply in (the message, or the thread it sits in)
    # Known to be a storm digest (clicked from one of its rows): never drawn over as one alert,
    # even in the moment between its post and its record in the store.
    digest: bool = False
    # Known to be one alert (clicked from its own Rerun/Resume buttons, which a digest has not):
    # drawn over without asking the store whether it is a digest.
    plain: bool = False


@dataclass(frozen=True)
class ActionRequest:
    verb: Verb
    kind: EventKind
    event_id: str
    actor: Actor
    surface: Surface
    channel_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    alert: MessageRef | None = None  # the alert the request came from (or that shows the event)
    team_id: str | None = None  # the Slack workspace of the actor
    # The run the person saw (a digest row lists one failed run): acted on only while it is
    # still the event's latest, so an old list never reruns a newer run's commit again.
    expected_index: int | None = None


@dataclass(frozen=True)
class PriorAction:
    """The earlier, winning request a duplicate is pointed to."""

    actor: Actor
    at: datetime
    status: str
    execution_url: str | None = None
    verb: Verb = "rerun"  # what the winner asked for


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
    settle_by: datetime | None = None  # unknown: read back until then; no run by then = safe to retry
    settled_late: bool = False  # the outcome was found by reading the event back after an unknown
