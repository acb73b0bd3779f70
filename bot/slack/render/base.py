"""Shared pieces of the Block Kit renderers: the message type, the alerts' message metadata, block
builders that enforce Slack's limits, and the facts of an event (subject, branch, execution...).

Import the public names from :mod:`bot.slack.render.messages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
)

from bot.codestream.ids import is_valid_id
from bot.codestream.models import EVENT_KINDS, KIND_LABEL, Event, EventKind
from bot.core.requests import Outcome
from bot.core.verbs import verb_spec
from bot.slack.render import text as t

METADATA_EVENT_TYPE: Final = "codestream_event"

# Slack's limits (https://docs.slack.dev/reference/block-kit/).
MAX_BLOCKS: Final = 50
MAX_SECTION_TEXT: Final = 3000
MAX_FIELD_TEXT: Final = 2000
MAX_FIELDS: Final = 10
MAX_HEADER_TEXT: Final = 150
MAX_BUTTON_TEXT: Final = 75
MAX_CONTEXT_TEXT: Final = 2000
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_CONFIRM_TITLE: Final = 100
MAX_CONFIRM_TEXT: Final = 300
MAX_BUTTON_URL: Final = 3000
# The notification text: Slack allows far more, but it is read in a notification banner.
MAX_FALLBACK_TEXT: Final = 600

# Per-value budgets, so a composed text never needs cutting through our own markup.
SUBJECT_LEN: Final = 250
NAME_LEN: Final = 100
MESSAGE_LEN: Final = 1500
SERVER_MESSAGE_LEN: Final = 500


@dataclass(frozen=True)
class SlackMessage:
    """What a renderer returns: the notification ``text``, the ``blocks`` and, for alerts, the
    message ``metadata`` that lets later thread replies and buttons find the event."""

    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chat.postMessage`` / ``chat.update`` / ``respond``."""
        kwargs: dict[str, Any] = {"text": self.text, "blocks": self.blocks}
        if self.metadata is not None:
            kwargs["metadata"] = self.metadata
        return kwargs


# --- message metadata --------------------------------------------------------------------


def event_metadata(kind: EventKind, event_id: str) -> dict[str, Any]:
    """Slack message metadata of an alert: which event it is about."""
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"kind": kind, "id": event_id}}


def event_from_metadata(metadata: Any) -> tuple[EventKind, str] | None:
    """The alert's message metadata -> (kind, id); anything malformed -> None."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return None
    kind, event_id = payload.get("kind"), payload.get("id")
    if kind not in EVENT_KINDS or not isinstance(event_id, str):
        return None
    return (kind, event_id.lower()) if is_valid_id(event_id) else None


# --- words ----------------------------------------------------------------------------------


def verb_title(verb: str) -> str:
    spec = verb_spec(verb)
    return spec.label if spec is not None else t.clip(verb, 20).capitalize()


def verb_past(verb: str) -> str:
    spec = verb_spec(verb)
    return spec.past if spec is not None else t.clip(verb, 20)


def kind_label(kind: EventKind) -> str:
    return KIND_LABEL.get(kind, "Code Stream")


def event_ref(kind: EventKind, event_id: str | None) -> str:
    """``Git event `8365ef3b-...``` (the id escaped: it may be whatever someone typed)."""
    shown = t.code(event_id, 80)
    return f"{kind_label(kind)} event {shown}" if shown else f"{kind_label(kind)} event"


# --- block builders (each enforces its limit) ------------------------------------------------


def header(text: str) -> dict[str, Any]:
    """A header of already-escaped text."""
    block: dict[str, Any] = HeaderBlock(
        text=PlainTextObject(text=t.truncate(text, MAX_HEADER_TEXT), emoji=True)
    ).to_dict()
    return block


def section(
    text: str, *, fields: list[str] | None = None, accessory: ButtonElement | OverflowMenuElement | None = None
) -> dict[str, Any]:
    """A mrkdwn section of already-escaped text, with optional fields and accessory."""
    field_objects = [MarkdownTextObject(text=t.truncate(f, MAX_FIELD_TEXT)) for f in (fields or [])[:MAX_FIELDS]]
    block: dict[str, Any] = SectionBlock(
        text=MarkdownTextObject(text=t.truncate(text, MAX_SECTION_TEXT)) if text else None,
        fields=field_objects or None,
        accessory=accessory,
    ).to_dict()
    return block


def fields_section(fields: list[str]) -> dict[str, Any]:
    return section("", fields=fields)


def context(*parts: str) -> dict[str, Any]:
    elements = [MarkdownTextObject(text=t.truncate(p, MAX_CONTEXT_TEXT)) for p in parts if p][:MAX_CONTEXT_ELEMENTS]
    block: dict[str, Any] = ContextBlock(elements=elements).to_dict()
    return block


def actions(buttons: list[Any], *, block_id: str | None = None) -> dict[str, Any]:
    """An actions block of buttons (and an overflow menu)."""
    block: dict[str, Any] = ActionsBlock(elements=buttons, block_id=block_id).to_dict()
    return block


def confirm_dialog(title: str, body: str, confirm: str) -> ConfirmObject:
    """A confirm dialog; ``title`` and ``body`` are already escaped."""
    return ConfirmObject(
        title=PlainTextObject(text=t.truncate(title, MAX_CONFIRM_TITLE), emoji=True),
        text=MarkdownTextObject(text=t.truncate(body, MAX_CONFIRM_TEXT)),
        confirm=PlainTextObject(text=confirm[:30]),
        deny=PlainTextObject(text="Cancel"),
    )


def button(
    label: str,
    *,
    action_id: str,
    value: str | None = None,
    url: str | None = None,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=t.truncate(label, MAX_BUTTON_TEXT), emoji=True),
        action_id=action_id,
        value=value,
        url=url,
        style=style,
        confirm=confirm,
    )


def fallback_text(*parts: str) -> str:
    """The notification text: the non-empty parts joined (links reduced to their labels), within
    its budget."""
    return t.truncate(t.strip_links(" — ".join(p for p in parts if p)), MAX_FALLBACK_TEXT)


def cap_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return blocks[:MAX_BLOCKS]


# --- the facts of an event -------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRef:
    """Which execution to show: its UI link, name (the pipeline), run number and status."""

    url: str | None
    name: str | None
    index: int | None
    status: str | None

    @classmethod
    def of_event(cls, event: Event, url: str | None) -> ExecutionRef:
        return cls(url=url, name=event.pipeline, index=event.execution_index, status=event.execution_status)

    @property
    def known(self) -> bool:
        return bool(self.url or self.index is not None)


def execution_label(ref: ExecutionRef) -> str:
    """``payments-ci #7`` (raw; escaped by the link builder)."""
    name = t.one_line(ref.name or "") or "execution"
    name = name if len(name) <= NAME_LEN else name[: NAME_LEN - 1] + t.ELLIPSIS
    if ref.index is None or name.replace(" ", "").endswith(f"#{ref.index}"):
        return name
    return f"{name} #{ref.index}"


def execution_link(ref: ExecutionRef) -> str:
    """``<url|payments-ci #7>`` or the escaped label when there is no usable URL."""
    return t.link(ref.url, execution_label(ref))


def status_text(status: str | None) -> str:
    """Code Stream's status, upper-cased before escaping (``&amp;`` must stay lower-case)."""
    return t.clip(status.upper() if status else None, 40)


def subject(event: Event | None, limit: int = SUBJECT_LEN) -> str:
    """The commit subject (first line), escaped; a placeholder when there is none."""
    if event is None:
        return ""
    return t.clip_subject(event.commit_subject, limit) or "(no commit subject)"


def branch(event: Event | None) -> str:
    return t.code(event.branch, NAME_LEN) if event is not None else ""


def commit(event: Event) -> str:
    """The short commit, linked to the commit when Code Stream gave a URL."""
    short = event.short_commit
    if not short:
        return ""
    return t.link(event.commit_url, short[:7]) if t.safe_url(event.commit_url) else t.code(short[:7], 7)


def field(label: str, value: str) -> str:
    return f"*{label}*\n{value}" if value else ""


def event_fields(event: Event, ref: ExecutionRef, *, owner: bool = False) -> list[str]:
    """The facts of an event as section fields (missing facts are left out)."""
    execution = execution_link(ref) if ref.known else ""
    candidates = [
        field("Branch", branch(event)),
        field("Execution", execution),
        field("Status", status_text(ref.status)),
        field("Repository", t.clip(event.repository, NAME_LEN)),
        field("Commit", commit(event)),
        field("Pipeline", t.clip(event.pipeline, NAME_LEN)),
        field("Project", t.clip(event.project, NAME_LEN)),
        field("Owner", t.clip(event.owner, NAME_LEN)) if owner else "",
    ]
    return [c for c in candidates if c][:MAX_FIELDS]


def message_section(event: Event | None) -> dict[str, Any] | None:
    """Code Stream's own ``message`` about the event, quoted and truncated."""
    if event is None or not (event.message or "").strip():
        return None
    return section(f"*Code Stream said:*\n{t.quote(t.clip_block(event.message, MESSAGE_LEN))}")


def text_facts(event: Event | None, ref: ExecutionRef | None = None) -> str:
    """Subject, branch and execution for the notification text."""
    if event is None:
        return ""
    parts = [t.clip_subject(event.commit_subject, 120)]
    if event.branch:
        parts.append(f"({t.clip(event.branch, 60)})")
    if ref is not None and ref.known:
        label = t.escape(execution_label(ref))
        parts.append(f"{label} {status_text(ref.status)}".strip())
    return " ".join(p for p in parts if p)


def outcome_tally(outcomes: Sequence[Outcome], *, denied: str, duplicate: str) -> list[str]:
    """ "3 started", "1 refused by Code Stream"…: a batch of reruns counted by how each came out."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    words = {
        "started": "started",
        "unknown": "sent, outcome not known yet (being checked)",
        "failed": "refused by Code Stream",
        "not_started": "not started (safe to try again)",
        "denied": denied,
        "duplicate": duplicate,
    }
    return [f"{counts[s]} {w}" for s, w in words.items() if counts.get(s)]
