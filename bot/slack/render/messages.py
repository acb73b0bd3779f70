"""Block Kit renderers: pure functions from the core's values to Slack messages.

No I/O, no settings, no clock: times shown relative to "now" take ``now`` as an argument. Every
value from Code Stream or from people is escaped (``& < >``) and truncated to Slack's limits
before a block is built, so a 10 KB commit subject still gives valid blocks.

Layouts:

* summary (``render_outcome`` / ``render_followup``): a section with the result and the commit
  subject; a fields section (branch, execution link, status, repository, commit, pipeline,
  project); the follow-up status; the error, if any; Code Stream's message, if any; a context
  line with who acted, when, and which event.
* alert (``render_alert`` and its later states, in ``blocks_alert``): a header ("❌ payments-ci
  failed"); the mention and commit subject; the facts as fields (with owner); Code Stream's
  message; a context line with the event and time; then the Rerun / Resume / Open execution
  buttons, or who acted, or how it came out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EventKind, Execution
from bot.core.errors import BotError
from bot.core.failures import FailureContext
from bot.core.followup.progress import new_execution_id
from bot.core.requests import Outcome, OutcomeStatus
from bot.core.verbs import verb_spec
from bot.slack.render import text as t
from bot.slack.render.alert import (
    is_checking,
    render_alert,
    render_alert_in_progress,
    render_alert_resolved,
    render_event_list,
)
from bot.slack.render.base import (
    METADATA_EVENT_TYPE,
    ExecutionRef,
    SlackMessage,
    cap_blocks,
    context,
    event_fields,
    event_ref,
    execution_link,
    fallback_text,
    field,
    kind_label,
    message_section,
    section,
    status_text,
    subject,
    text_facts,
    verb_past,
    verb_title,
)
from bot.slack.render.control import control_buttons
from bot.slack.render.errors import ErrorView, describe_error
from bot.slack.render.failure import failure_section, failure_text

__all__ = [
    "METADATA_EVENT_TYPE",
    "SlackMessage",
    "describe_error",
    "render_alert",
    "render_alert_in_progress",
    "render_alert_resolved",
    "render_error",
    "render_event_list",
    "render_followup",
    "render_help",
    "render_outcome",
    "render_usage_error",
    "status_emoji",
]


@dataclass(frozen=True)
class _Result:
    emoji: str
    phrase: str  # "{verb}" is the verb's title ("Rerun"), "{past}" its past form ("rerun")
    note: str = ""
    joiner: str = " — "


_RESULTS: Final[dict[OutcomeStatus, _Result]] = {
    "started": _Result("✅", "{verb} started"),
    "failed": _Result("❌", "{verb} failed"),
    "unknown": _Result("⚠️", "{verb} may have started", "check the execution before trying again"),
    "not_started": _Result("↩️", "{verb} did not start", "safe to try again"),
    "duplicate": _Result("🔁", "Already {past}", joiner=" "),
    "denied": _Result("🚫", "{verb} denied"),
    "shown": _Result("ℹ️", "{kind} event"),
}

_STATUS_EMOJI: Final[dict[str, str]] = {
    "NOT_STARTED": "⏳",
    "QUEUED": "⏳",
    "PREPARING_WORKSPACE": "⏳",
    "STARTED": "⏳",
    "RUNNING": "⏳",
    "RESUMING": "⏳",
    "WAITING": "⏸",
    "PAUSING": "⏸",
    "PAUSED": "⏸",
    "COMPLETED": "✅",
    "FAILED": "❌",
    "FAILED_CONTINUE": "❌",
    "ROLLBACK_FAILED": "❌",
    "CANCELING": "⛔",
    "CANCELED": "⛔",
    "ROLLING_BACK": "⏪",
    "ROLLBACK_COMPLETED": "↩️",
    "SKIPPED": "⏭",
}


def status_emoji(status: str | None) -> str:
    return _STATUS_EMOJI.get((status or "").strip().upper(), "•")


# --- the summary of an action ------------------------------------------------------------------


# An unknown outcome still being read back (the final one, after the deadline, is "unknown").
_CHECKING: Final = _Result("⏳", "{verb} sent — outcome not known yet")
_IN_HAND: Final = _Result("🔁", "Already in hand", joiner=" ")
_IN_FLIGHT: Final = frozenset({"claimed", "pending", "unknown"})


def _result(outcome: Outcome) -> _Result:
    if is_checking(outcome):
        return _CHECKING
    prior = outcome.prior
    if outcome.status == "duplicate" and prior is not None and prior.status in _IN_FLIGHT:
        return _IN_HAND
    return _RESULTS.get(outcome.status, _RESULTS["failed"])


def _headline(outcome: Outcome, now: datetime) -> tuple[str, str]:
    """(mrkdwn, plain) first line: what was asked and how it came out."""
    result = _result(outcome)
    verb = outcome.request.verb
    if outcome.status == "duplicate" and outcome.prior is not None:
        verb = outcome.prior.verb  # "Already resumed": what the winner did
    phrase = result.phrase.format(verb=verb_title(verb), past=verb_past(verb), kind=kind_label(outcome.request.kind))
    note = result.note
    if outcome.status == "duplicate":
        note = _duplicate_note(outcome, now)
    elif is_checking(outcome):
        note = _checking_note(outcome)
    elif outcome.status == "not_started" and outcome.settled_late:
        waited = t.age(t.seconds_between(outcome.settle_by, outcome.at)) if outcome.settle_by else "the deadline"
        note = f"no run appeared within {waited}; safe to try again"
    tail = f"{result.joiner}{note}" if note else ""
    return f"{result.emoji} *{phrase}*{tail}", f"{result.emoji} {phrase}{tail}"


def _checking_note(outcome: Outcome) -> str:
    until = f" until {t.slack_date(outcome.settle_by)}" if outcome.settle_by is not None else ""
    return (
        "Code Stream did not answer clearly, so the request may have reached it. The bot is reading the "
        f"event back{until} and will update this message; do not try again meanwhile."
    )


def _duplicate_note(outcome: Outcome, now: datetime) -> str:
    prior = outcome.prior
    if prior is None:
        return "moments ago"
    who = t.user_mention(prior.actor.user_id)
    if prior.status in _IN_FLIGHT:
        asked = t.age(t.seconds_between(now, prior.at))
        return f"— {who}'s {prior.verb} of this event is in progress (asked {asked} ago)"
    note = f"by {who} {t.age(t.seconds_between(now, prior.at))} ago"
    if prior.execution_url and t.safe_url(prior.execution_url):
        note += f" · {t.link(prior.execution_url, 'see that execution')}"
    return note


def _outcome_ref(outcome: Outcome) -> ExecutionRef | None:
    """The execution to show: the (new) execution when known, else the event's last one."""
    execution, event = outcome.execution, outcome.event
    if execution is None and event is None:
        if not outcome.execution_url:
            return None
        return ExecutionRef(url=outcome.execution_url, name=None, index=None, status=None)
    name = (event.pipeline if event else None) or (execution.name if execution else None)
    index = execution.index if execution is not None and execution.index is not None else None
    if index is None and event is not None:
        index = event.execution_index
    status = (execution.status if execution else None) or (event.execution_status if event else None)
    return ExecutionRef(url=outcome.execution_url, name=name, index=index, status=status)


def _facts_blocks(outcome: Outcome, ref: ExecutionRef | None) -> list[dict[str, Any]]:
    if outcome.event is not None and ref is not None:
        fields = event_fields(outcome.event, ref)
    elif ref is not None and ref.known:
        fields = [field("Execution", execution_link(ref)), field("Status", status_text(ref.status))]
    else:
        fields = []
    fields = [f for f in fields if f]
    return [section("", fields=fields)] if fields else []


def _error_view(outcome: Outcome) -> ErrorView | None:
    # While checking, the transport error's own advice ("try again in a minute") is wrong.
    if outcome.error is None or is_checking(outcome):
        return None
    return describe_error(outcome.error, kind=outcome.request.kind, event_id=outcome.request.event_id)


def _context_line(outcome: Outcome) -> str:
    request = outcome.request
    who = t.user_mention(request.actor.user_id)
    mutates = (spec := verb_spec(request.verb)) is not None and spec.mutates
    acted = f"{verb_title(request.verb)} requested" if mutates else "Requested"
    parts = [
        f"{acted} by {who}",
        t.slack_date(outcome.at),
        event_ref(request.kind, request.event_id),
        f"ref {t.code(request.request_id, 40)}",
    ]
    return " · ".join(p for p in parts if p)


def _summary(
    outcome: Outcome,
    ref: ExecutionRef | None,
    *,
    now: datetime,
    progress: str = "",
    failure: FailureContext | None = None,
    controls: dict[str, Any] | None = None,
) -> SlackMessage:
    head, head_plain = _headline(outcome, now)
    lead = f"{head}\n*{subject(outcome.event)}*" if outcome.event is not None else head
    blocks = [section(lead), *_facts_blocks(outcome, ref)]
    if progress:
        blocks.append(section(progress))
    why = failure_section(failure)
    if why is not None:
        blocks.append(why)
    view = _error_view(outcome)
    if view is not None:
        blocks.append(section(view.mrkdwn))
    message = message_section(outcome.event)
    if message is not None:
        blocks.append(message)
    if controls is not None:
        blocks.append(controls)
    blocks.append(context(_context_line(outcome)))
    text = fallback_text(
        head_plain,
        text_facts(outcome.event, ref),
        t.one_line(progress.replace("*", "")),
        failure_text(failure),
        view.plain if view is not None else "",
        f"by {t.user_mention(outcome.request.actor.user_id)}",
    )
    return SlackMessage(text=text, blocks=cap_blocks(blocks))


def render_outcome(outcome: Outcome, *, now: datetime) -> SlackMessage:
    """The summary posted after an action or a ``show``; a started one carries the execution's
    controls (Cancel, Pause) while it runs."""
    ref = _outcome_ref(outcome)
    execution_id = new_execution_id(outcome) if outcome.status == "started" else None
    controls = None
    if execution_id is not None and ref is not None:
        controls = control_buttons(
            execution_id, outcome.request.kind, status=ref.status, pipeline=ref.name, index=ref.index
        )
    return _summary(outcome, ref, now=now, controls=controls)


def _progress_line(execution: Execution, *, gave_up: bool, followed_for: float) -> str:
    status = status_text(execution.status) or "UNKNOWN"
    current = f"{status_emoji(execution.status)} *{status}*"
    seconds = execution.duration_seconds
    if gave_up:
        return f"⌛ *Gave up following after {t.age(followed_for)}* — last status {current}; check the execution."
    if seconds is None:
        return current
    if execution.is_terminal:
        return f"{current} in {t.duration(seconds)}"
    return f"{current} · running for {t.duration(seconds)}"


def render_followup(
    outcome: Outcome,
    *,
    execution: Execution,
    now: datetime,
    gave_up: bool = False,
    failure: FailureContext | None = None,
    execution_id: str | None = None,
    acted: str = "",
) -> SlackMessage:
    """The summary, updated in place while the bot follows the new execution; at a failure, with
    the failed stage and task and the first lines of the error. With ``execution_id``, the
    controls its status allows (Cancel, Pause, Resume execution); ``acted``: who did that last."""
    event = outcome.event
    index = execution.index if execution.index is not None else (event.execution_index if event else None)
    ref = ExecutionRef(
        url=outcome.execution_url,
        name=(event.pipeline if event else None) or execution.name,
        index=index,
        status=execution.status,
    )
    progress = _progress_line(execution, gave_up=gave_up, followed_for=t.seconds_between(now, outcome.at))
    if acted:
        progress = f"{progress}\n{acted}"
    controls = None
    if execution_id is not None and not gave_up:
        controls = control_buttons(
            execution_id, outcome.request.kind, status=execution.status, pipeline=ref.name, index=index
        )
    return _summary(outcome, ref, now=now, progress=progress, failure=failure, controls=controls)


# --- errors, usage and help ------------------------------------------------------------------


def render_error(
    error: CodeStreamError | BotError, *, kind: EventKind | None = None, event_id: str | None = None
) -> SlackMessage:
    """Any error on its own (no outcome around it), rendered by its class."""
    view = describe_error(error, kind=kind, event_id=event_id)
    return SlackMessage(text=fallback_text(f"{view.emoji} {view.plain}"), blocks=[section(view.mrkdwn)])


#: What the person sees when something unexpected broke on the bot's side. Not "please try again":
#: the request may have been an action that ran.
SOMETHING_WENT_WRONG = SlackMessage(
    text=(
        "⚠️ Something went wrong on the bot's side; it has been logged. If you asked for a rerun "
        "or resume, check the event with `/codestream show <event>` before asking again."
    ),
    blocks=[],
)


def render_usage_error(error: CodeStreamError | BotError) -> SlackMessage:
    """Words that did not make a command: say how to write them."""
    message = t.clip_block(error.user_message, 2500)
    blocks = [section(f"🤔 {message}"), context("`/codestream help` lists every command.")]
    return SlackMessage(text=fallback_text(f"🤔 {t.one_line(message)}"), blocks=blocks)


def render_help(commands_help: Sequence[tuple[str, str]]) -> SlackMessage:
    """``commands_help``: (usage line, what it does) per command, from the command table."""
    commands = "\n".join(f"• `{t.escape(usage)}` — {t.escape(what)}" for usage, what in commands_help)
    blocks = [
        section("*Code Stream bot* — rerun or resume failed git, Gerrit and Docker registry events from Slack."),
        section(commands),
        context(
            "On a failure alert: press *Rerun* or *Resume*, or reply `rerun`, `resume` or `status` in its thread. "
            "The bot follows the new execution and updates its summary until it ends; while it runs, the summary "
            "has *Pause* and *Cancel*. Approval requests have *Approve* and *Reject*."
        ),
    ]
    return SlackMessage(
        text="Code Stream bot: /codestream rerun|resume|show &lt;event id&gt;, /codestream list, /codestream audit",
        blocks=blocks,
    )
