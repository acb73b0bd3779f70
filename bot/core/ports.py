"""The ports the core talks to people through. The Slack layer implements them
(``bot.slack.notifier.SlackNotifier``); the core never imports Slack.

Each method says what to show, never how: rendering, Block Kit limits and delivery retries are
the implementation's business. None of them raises for a delivery failure; they say whether it
worked, so the core can retry later or leave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.codestream.models import Event, Execution
from bot.core.failures import FailureContext
from bot.core.requests import MessageRef, Outcome
from bot.core.webhook_recovery import Recovery
from bot.store import AlertRecord, DigestRecord, DigestRow, FollowupRecord


@dataclass(frozen=True)
class Delivered:
    """A post's result: where it landed, or why the other side refused it."""

    ts: str | None  # the message's id (Slack's ts) when it was posted
    refused: str | None = None  # the refusal's code (e.g. ``not_in_channel``) when it was not


# How a followed execution's summary ends, when it does.
Ending = Literal["running", "finished", "gave_up", "missing"]


class AlertNotifier(Protocol):
    """Posts failure alerts (the watcher)."""

    async def post_alert(
        self,
        event: Event,
        *,
        channel: str,
        mention: str | None,
        thread_ts: str | None,
        failure: FailureContext | None = None,
        author: str | None = None,
        repeat: bool = False,
    ) -> Delivered:
        """``failure``: why it failed (the failed stage and task, the error), when known;
        ``author``: the Slack user id of the person who pushed, to mention; ``repeat``: another
        failure of a series whose alert is still open (posted in that alert's thread)."""
        ...

    async def show_repeats(
        self,
        alert: MessageRef,
        event: Event,
        *,
        failure: FailureContext | None,
        repeats: int,
        mention: str | None = None,
        author: str | None = None,
    ) -> bool:
        """The series' top-level alert, redrawn with how many failures followed it."""
        ...

    async def show_recovery(
        self, alert: MessageRef, event: Event, *, recovery: Recovery, missed: int, record: AlertRecord
    ) -> bool:
        """A broken webhook's alert once it works again: since when, and its ``missed`` pushes
        offered for a rerun."""
        ...

    async def post_digest(self, channel: str, rows: Sequence[DigestRow], *, mention: str | None) -> Delivered:
        """A storm: one message listing these failures (each row: why it failed, and a menu to
        rerun, resume or open it), with "Rerun all failed" behind a confirmation."""
        ...

    async def draw_digest(self, digest: DigestRecord, rows: Sequence[DigestRow]) -> bool:
        """The digest redrawn over its message as it stands now (more rows, rows acted on)."""
        ...


class FollowThroughView(Protocol):
    """Keeps a followed execution's summary, and at its end the original alert, up to date."""

    async def show_progress(
        self, followup: FollowupRecord, outcome: Outcome, execution: Execution, *, ending: Ending, now: datetime
    ) -> bool:
        """Re-render the summary ``followup`` points at; whether Slack took the update."""
        ...

    async def resolve_alert(
        self, followup: FollowupRecord, outcome: Outcome, execution: Execution, *, final_status: str, now: datetime
    ) -> bool:
        """The alert the action came from, once its execution ended ("Fixed by ..."/"failed again")."""
        ...


class OutcomeNotifier(Protocol):
    """How an outcome known only later reaches people (the reconciler)."""

    async def settled(self, outcome: Outcome, summary: MessageRef | None) -> MessageRef | None:
        """Update ``summary`` in place (or post one where the request came from) and the alert.
        Returns where the summary now is (for the follow-through), None if nowhere. Never raises."""
        ...


class LoggedOutcomes:
    """Without Slack (``check``, tools): the outcome is in the audit trail and the log only."""

    async def settled(self, outcome: Outcome, summary: MessageRef | None) -> MessageRef | None:
        return None
