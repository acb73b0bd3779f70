"""The buttons on alerts, lists and the App Home: Rerun and Resume (from the verb registry, each
behind a confirm dialog naming what it reruns) and Open execution, and the values they carry,
drawn and read back here (``parse_button_value``: what a click's value names)."""

from __future__ import annotations

import json
from typing import Final

from slack_sdk.models.blocks import ButtonElement, ConfirmObject

from bot.codestream.errors import InvalidId
from bot.codestream.ids import validate_server_id
from bot.codestream.models import Event, EventKind, as_kind
from bot.core.errors import UsageError
from bot.core.verbs import VERBS, VerbSpec
from bot.slack.render import text as t
from bot.slack.render.base import MAX_BUTTON_URL, branch, button, confirm_dialog, subject, verb_title

# Button action ids come from the verb registry; kept as names for the listeners and the demo.
ACTION_RERUN: Final = VERBS["rerun"].button_action_id or ""
ACTION_RESUME: Final = VERBS["resume"].button_action_id or ""
ACTION_OPEN: Final = "codestream_open_execution"

# A button value is about 60 characters; anything much longer is not ours.
MAX_BUTTON_VALUE: Final = 256


# --- values ------------------------------------------------------------------------------------


def button_value(kind: EventKind, event_id: str) -> str:
    """The compact value of a Rerun/Resume button: ``{"kind":"git","id":"<uuid>"}``."""
    return json.dumps({"kind": kind, "id": event_id}, separators=(",", ":"))


def parse_button_value(value: str) -> tuple[EventKind, str]:
    """Read a button value back. Anything malformed raises UsageError, and nothing else."""
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        raise UsageError("That button is not one of mine (bad value).")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise UsageError("That button is not one of mine (bad value).") from exc
    if not isinstance(data, dict):
        raise UsageError("That button is not one of mine (bad value).")
    raw_kind, event_id = data.get("kind"), data.get("id")
    kind = as_kind(raw_kind)
    if kind is None or not isinstance(event_id, str):
        raise UsageError("That button names an unknown kind of event.")
    try:
        return kind, validate_server_id(event_id)
    except InvalidId as exc:
        raise UsageError("That button names an invalid Code Stream id.") from exc


def event_button_value(event: Event) -> str | None:
    """The button value for an event, or None when its id is not a valid Code Stream id."""
    if event.id is None:
        return None
    try:
        return button_value(event.kind, validate_server_id(event.id))
    except InvalidId:
        return None


def listed_button_value(event: Event) -> str | None:
    """A button value that also names the run shown (the App Home: a tab stays on screen, so a
    click acts only while that run is still the event's latest)."""
    value = event_button_value(event)
    if value is None or event.execution_index is None:
        return value
    return json.dumps({**json.loads(value), "index": event.execution_index}, separators=(",", ":"))


def button_index(value: str) -> int | None:
    """The run a button names (``listed_button_value``), if any; anything else is None."""
    try:
        data = json.loads(value) if isinstance(value, str) and len(value) <= MAX_BUTTON_VALUE else None
    except (ValueError, RecursionError):
        return None
    index = data.get("index") if isinstance(data, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else None


# --- buttons -----------------------------------------------------------------------------------


def _confirm_body(event: Event, verb: str) -> str:
    """Names the pipeline, branch and commit, so nobody reruns the wrong thing."""
    words = [f"Ask Code Stream to {verb} *{t.clip(event.pipeline, 60, default='the pipeline')}*"]
    if event.branch:
        words.append(f"on branch {branch(event)}")
    if event.short_commit:
        words.append(f"at commit {t.code(event.short_commit, 7)}")
    return f"{' '.join(words)}?\n>{subject(event, 100)}"


def _confirm(event: Event, verb: str) -> ConfirmObject:
    """The dialog: "Rerun payments-ci?", the branch and commit, [Rerun] [Cancel]."""
    title = verb_title(verb)
    pipeline = t.clip(event.pipeline, 80, default="this event")
    return confirm_dialog(f"{title} {pipeline}?", _confirm_body(event, verb), title)


def verb_button(event: Event, verb: VerbSpec, value: str) -> ButtonElement:
    """A verb's button (Rerun, Resume) on ``event``, carrying ``value``."""
    assert verb.button_action_id is not None, verb.name
    return button(
        verb.label,
        action_id=verb.button_action_id,
        value=value,
        style=verb.button_style,
        confirm=_confirm(event, verb.name),
    )


def open_button(execution_url: str | None) -> ButtonElement | None:
    """A link to the execution in Code Stream; None when there is no usable link."""
    url = t.safe_url(execution_url)
    if url is None or len(url) > MAX_BUTTON_URL:
        return None
    return button("Open execution", action_id=ACTION_OPEN, url=url)
