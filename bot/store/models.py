"""Records the store reads and writes. All datetimes are timezone-aware and normalised to UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: An aware datetime (naive ones are rejected), converted to UTC.
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

# Documented values (the columns are plain text so new values need no migration).
ACTION_KINDS: Final = ("git", "gerrit", "docker")
# ``actions.action`` holds a mutating verb's name from the verb registry (bot.core.verbs): the
# store sits below the core, so it takes any name and the core reads it back (``stored_verb``).
SURFACES: Final = ("slash", "button", "thread", "mention", "cli")
ACTION_STATUSES: Final = (
    "claimed",  # the intent is claimed and checked; nothing has been sent to Code Stream yet
    "pending",  # the one call to Code Stream is being made (or the process died around it)
    "started",
    "failed",
    "unknown",
    "denied",
    "duplicate",
    "not_started",
)
#: An action in one of these has an outcome nobody knows yet: its intent stays claimed.
OPEN_STATUSES: Final = ("claimed", "pending", "unknown")


@dataclass(frozen=True, slots=True)
class Claim:
    """The current owner of a claim key. ``won`` is True only for the caller that created it."""

    key: str
    holder: str
    won: bool
    claimed_at: datetime
    expires_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ActionRecord(_Record):
    """One resume/rerun request: the audit trail and the idempotency record."""

    id: int | None = None
    kind: str
    event_id: str
    action: str
    actor_id: str
    actor_name: str | None = None
    surface: str
    channel_id: str | None = None
    status: str = "pending"
    execution_link: str | None = None
    execution_id: str | None = None
    error: str | None = None
    error_class: str | None = None
    duplicate_of: int | None = None
    request_id: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None
    # The intent lifecycle (see bot.core.reconcile): set while the outcome is pending or unknown.
    owner: str | None = None
    before_execution_index: int | None = None
    before_execution_link: str | None = None
    settle_by: UTCDatetime | None = None
    next_check_at: UTCDatetime | None = None
    summary_channel: str | None = None
    summary_ts: str | None = None
    alert_channel: str | None = None
    alert_ts: str | None = None
    alert_thread_ts: str | None = None
    project: str | None = None  # of the event, when it was read
    pipeline: str | None = None

    @property
    def in_flight(self) -> bool:
        """Nobody knows the outcome yet: the intent stays claimed and a reconciler finishes it."""
        return self.status in OPEN_STATUSES and self.finished_at is None


class AlertRecord(_Record):
    """A failure alert posted to Slack. Unique per (kind, event_id, execution_index).

    ``execution_index`` is None for a failure without an execution (the trigger failed).
    """

    kind: str
    event_id: str
    execution_index: int | None = Field(default=None, ge=0)
    channel_id: str
    ts: str
    thread_ts: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    id: int | None = None
    series: str | None = None  # "kind:project:pipeline:branch": repeated failures thread together
    repeats: int = Field(default=0, ge=0)  # failures threaded under this (top-level) alert
    resolved_at: UTCDatetime | None = None  # a fix was seen: the next failure is a new alert
    mention: str | None = None  # the route's mention it was posted with
    author: str | None = None  # the Slack user mentioned as the one who pushed


class FollowupRecord(_Record):
    """An execution being followed, and the Slack message(s) to update as it progresses."""

    id: int | None = None
    execution_id: str
    kind: str
    event_id: str
    action_id: int | None = None
    channel_id: str
    summary_ts: str
    alert_channel_id: str | None = None
    alert_ts: str | None = None
    actor_id: str | None = None
    status: str = "RUNNING"
    next_poll_at: UTCDatetime
    deadline_at: UTCDatetime
    interval: float = Field(default=5.0, gt=0)
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None
    control_verb: str | None = None  # the last cancel/pause/resume-execution from Slack
    control_by: str | None = None  # who asked (a Slack user id)
    control_at: UTCDatetime | None = None


class MuteRecord(_Record):
    """Failures of a pipeline (or of a repository's branch) not alerted for a while."""

    scope: str  # "pipeline" | "branch"
    kind: str
    project: str | None = None
    pipeline: str | None = None
    repo: str | None = None
    branch: str | None = None
    until: UTCDatetime  # it ends by itself then, at the latest
    until_pass: bool = False  # ...or as soon as a run of what was muted passes
    event_id: str | None = None  # the event it was muted from
    muted_by: str
    channel_id: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    ended_at: UTCDatetime | None = None
    ended_by: str | None = None
    suppressed: int = 0
    id: int | None = None


class SubscriptionRecord(_Record):
    """An alert route a channel added itself: failures matching every filter that is set go to
    ``channel_id`` (after BOT_CONFIG's routes). The core matches; the store keeps them."""

    id: int | None = None
    channel_id: str
    kind: str | None = None
    project: str | None = None
    pipeline: str | None = None
    repo: str | None = None
    branch: str | None = None
    mention: str | None = None
    created_by: str
    created_at: UTCDatetime = Field(default_factory=utcnow)
    removed_at: UTCDatetime | None = None
    removed_by: str | None = None


class UndeliveredAlert(_Record):
    """An alert Slack refused for good; retried with backoff until ``give_up_at``."""

    key: str
    kind: str
    event_id: str
    execution_index: int | None = None
    channel_id: str
    thread_ts: str | None = None
    mention: str | None = None
    reason: str
    tries: int = 1
    first_at: UTCDatetime
    next_try_at: UTCDatetime
    give_up_at: UTCDatetime


class DigestRecord(_Record):
    """One digest message: many failures of one channel, posted as one (a storm)."""

    id: int | None = None
    channel_id: str
    ts: str
    created_at: UTCDatetime
    updated_at: UTCDatetime  # when the newest row arrived
    version: int = 1  # bumped by every change to its rows
    drawn: int = 1  # the version Slack shows
    mention: str | None = None  # the routes' mentions it was posted with
    closed_at: UTCDatetime | None = None  # takes no more failures


class DigestRow(_Record):
    """One failure listed in a digest; it is an alert too (same channel and ts).

    ``facts`` and ``state`` are the core's and the renderer's business (JSON objects): what the
    row shows about the failure, and what happened to it since (None: nothing yet)."""

    id: int | None = None
    digest_id: int = 0
    kind: str
    event_id: str
    execution_index: int | None = Field(default=None, ge=0)
    facts: dict[str, Any]
    state: dict[str, Any] | None = None
    added_at: UTCDatetime = Field(default_factory=utcnow)


class ApprovalRecord(_Record):
    """A Code Stream approval (user operation) the bot posted a request for, and how it ended."""

    id: int | None = None
    operation_id: str
    channel_id: str | None = None
    ts: str | None = None
    status: str = "ACTIVE"
    project: str | None = None
    pipeline: str | None = None
    execution_id: str | None = None
    decided_by: str | None = None
    decided_in: str | None = None
    response_message: str | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    finished_at: UTCDatetime | None = None
