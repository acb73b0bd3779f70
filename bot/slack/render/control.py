"""Execution control in Slack: the Cancel / Pause / Resume execution buttons a followed
execution's summary carries (each behind a confirm dialog naming the pipeline and ``#index``),
the line that says who acted, and the answer to a cancel, pause or resume. Pure."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from bot.codestream.errors import InvalidId
from bot.codestream.ids import validate_server_id
from bot.codestream.models import EventKind
from bot.core.control import ControlOutcome
from bot.core.control.requests import NotActionable, pipeline_of
from bot.core.errors import UsageError
from bot.core.verbs import CONTROLS, ControlSpec, control_spec
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, actions, button, confirm_dialog, context, fallback_text, section
from bot.slack.render.buttons import MAX_BUTTON_VALUE, button_value, parse_button_value
from bot.slack.render.errors import describe_error

CONTROLS_BLOCK_ID: Final = "codestream_execution_controls"
#: The issue's rule: Cancel and Pause while it runs, waits or is queued; Resume execution (and
#: Cancel) while it is paused.
_SHOWN: Final[dict[str, tuple[str, ...]]] = {
    **dict.fromkeys(("RUNNING", "WAITING", "QUEUED"), ("pause", "cancel")),
    "PAUSED": ("resume-execution", "cancel"),
}
CANCEL_WARNING: Final = "Some task types (CI, custom, Kubernetes) are not told of a cancel and may keep running."


def _name(pipeline: str | None, index: int | None) -> str:
    """The pipeline and run number, escaped (mrkdwn)."""
    number = f" #{index}" if index is not None else ""
    return f"{t.clip(pipeline, 60, default='this execution')}{number}"


def _confirm_body(spec: ControlSpec, pipeline: str | None, index: int | None) -> str:
    body = f"Ask Code Stream to {spec.label.lower()} *{_name(pipeline, index)}*?"
    if spec.name == "cancel":
        body += f"\n{CANCEL_WARNING}"
    return body


def control_value(kind: EventKind | None, execution_id: str) -> str:
    """A control button's value: the execution, and the kind of event that started it (access
    rules by kind), when an event did (a pipeline run from Slack: none)."""
    if kind is None:
        return json.dumps({"id": execution_id}, separators=(",", ":"))
    return button_value(kind, execution_id)


def parse_control_value(value: str) -> tuple[EventKind | None, str]:
    """A control button's value read back; UsageError for anything malformed."""
    try:
        data = json.loads(value) if isinstance(value, str) and len(value) <= MAX_BUTTON_VALUE else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and "kind" not in data and isinstance(data.get("id"), str):
        try:
            return None, validate_server_id(data["id"])
        except InvalidId as exc:
            raise UsageError("That button names an invalid Code Stream id.") from exc
    return parse_button_value(value)


def control_buttons(
    execution_id: str, kind: EventKind | None, *, status: str | None, pipeline: str | None, index: int | None
) -> dict[str, Any] | None:
    """The actions block for an execution in ``status``; None when nothing can be done to it."""
    names = _SHOWN.get((status or "").strip().upper(), ())
    if not names:
        return None
    value = control_value(kind, execution_id)
    buttons = []
    for spec in (s for s in CONTROLS.values() if s.name in names):
        title = f"{spec.label} {t.clip(pipeline, 60, default='execution')}?"
        dialog = confirm_dialog(title, _confirm_body(spec, pipeline, index), spec.label)
        buttons.append(
            button(spec.label, action_id=spec.button_action_id, value=value, style=spec.button_style, confirm=dialog)
        )
    return actions(buttons, block_id=CONTROLS_BLOCK_ID)


def acted_line(verb: str | None, actor_id: str | None, at: datetime | None) -> str:
    """ "⛔ Canceled by @alice · <date>" for the summary; "" when nobody acted from Slack."""
    spec = control_spec(verb) if verb else None
    if spec is None or not actor_id:
        return ""
    when = f" · {t.slack_date(at)}" if at is not None else ""
    return f"{spec.emoji} {spec.reason} from Slack by {t.user_mention(actor_id)}{when}"


# --- the answer --------------------------------------------------------------------------------


def _headline(outcome: ControlOutcome, now: datetime) -> str:
    spec = outcome.request.spec
    who = t.user_mention(outcome.request.actor.user_id)
    what = _name(outcome.pipeline, outcome.execution.index if outcome.execution else None)
    status = t.escape((outcome.execution.status or "").upper()) if outcome.execution else ""
    if outcome.status == "done":
        now_status = f" — now *{status}*" if status else ""
        return f"{spec.emoji} {who} {spec.past} *{what}*{now_status}"
    if outcome.status == "unknown" and not outcome.settled_late:
        until = f" until {t.slack_date(outcome.settle_by)}" if outcome.settle_by else ""
        return (
            f"⏳ *{spec.label} of {what} sent — outcome not known yet.* Code Stream did not answer clearly; "
            f"the bot is reading the execution back{until} and will update this message. Do not try again meanwhile."
        )
    if outcome.status == "unknown":
        return f"⚠️ *{spec.label} of {what} not confirmed* — check the execution in Code Stream before trying again."
    if outcome.status == "not_started":
        tail = f" (it is {status})" if status else ""
        return f"↩️ *{spec.label} of {what} did not take effect*{tail} — safe to try again."
    if outcome.status == "duplicate" and outcome.prior is not None:
        prior = outcome.prior
        asked = t.age(t.seconds_between(now, prior.at))
        return (
            f"🔁 *Already in hand* — {t.user_mention(prior.actor.user_id)}'s "
            f"{CONTROLS[prior.verb].label.lower()} of this execution is in progress (asked {asked} ago)."
        )
    if outcome.status == "denied":
        return f"🚫 *{spec.label} denied*"
    if isinstance(outcome.error, NotActionable):  # a status that does not allow it: no error
        return f"ℹ️ *Not {spec.past}*"
    return f"❌ *{spec.label} failed*"


def render_control_outcome(outcome: ControlOutcome, *, now: datetime) -> SlackMessage:
    """The answer to a cancel, pause or resume: who did what to which execution, or why not."""
    head = _headline(outcome, now)
    blocks = [section(head)]
    if outcome.error is not None and outcome.status in ("failed", "denied", "not_started"):
        blocks.append(section(describe_error(outcome.error).mrkdwn))
    if outcome.status == "done" and outcome.request.verb == "cancel":
        blocks.append(context(f"⚠️ {CANCEL_WARNING}"))
    link = t.link(outcome.execution_url, "Open the execution") if outcome.execution_url else ""
    parts = [p for p in (link, f"ref {t.code(outcome.request.request_id, 40)}") if p]
    blocks.append(context(" · ".join(parts)))
    error_text = describe_error(outcome.error).plain if outcome.error is not None else ""
    return SlackMessage(text=fallback_text(head.replace("*", ""), error_text), blocks=blocks)


__all__ = ["CANCEL_WARNING", "acted_line", "control_buttons", "pipeline_of", "render_control_outcome"]
