"""Event references as people type them: ``[git|gerrit|docker] <event id | Code Stream link>``.

Pure: no Slack, no I/O. Malformed input raises UsageError saying what was expected; nothing
here ever reaches Code Stream. Used by the command registry and the audit query parser.
"""

from __future__ import annotations

import re
from typing import Final

from bot.codestream.models import EventKind
from bot.core.errors import UsageError

TARGET_USAGE: Final = "[git|gerrit|docker] <event id or link>"
KINDS: Final[dict[str, EventKind]] = {
    "git": "git",
    "gerrit": "gerrit",
    "docker": "docker",
    "registry": "docker",
}
_COLLECTION_KIND: Final[dict[str, EventKind]] = {
    "git-events": "git",
    "gerrit-events": "gerrit",
    "registry-events": "docker",
}
_UUID_TEXT: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID: Final = re.compile(rf"^{_UUID_TEXT}$")
_IN_URL: Final = re.compile(rf"(?P<segment>[A-Za-z-]+)/(?P<id>{_UUID_TEXT})(?![0-9a-fA-F-])")
_LINK: Final = re.compile(r"^<([^>|]+)(?:\|[^>]*)?>$")


def _unwrap_link(word: str) -> str:
    """Slack sends links in text as ``<url>`` or ``<url|label>``."""
    match = _LINK.match(word)
    return match.group(1) if match else word


def parse_target(words: list[str], *, command: str) -> tuple[EventKind, str]:
    """``[kind] <id | url>`` -> (kind, lower-case id). The caller adds its usage line to errors."""
    explicit: EventKind | None = None
    if words and words[0].lower() in KINDS:
        explicit = KINDS[words.pop(0).lower()]
    if not words:
        raise UsageError(f"`{command}` needs an event id.")
    if len(words) > 1:
        raise UsageError(f"`{command}` takes one event id, got {len(words)} words.")
    target = _unwrap_link(words[0])
    if _UUID.match(target):
        return explicit or "git", target.lower()
    if "/" in target:
        matches = list(_IN_URL.finditer(target))
        for match in reversed(matches):
            kind = _COLLECTION_KIND.get(match.group("segment").lower())
            if kind is not None:
                if explicit is not None and explicit != kind:
                    raise UsageError(f"That link is to a {kind} event, not a {explicit} event.")
                return kind, match.group("id").lower()
        if any(m.group("segment").lower() in ("executions", "execution") for m in matches):
            raise UsageError(
                "That link is to a pipeline execution. Reruns act on the event that started it: "
                "paste the event's id or link from Triggers > Activity."
            )
        if matches:
            return explicit or "git", matches[-1].group("id").lower()
    shown = target if len(target) <= 60 else target[:57] + "..."
    raise UsageError(f"`{shown}` is not a Code Stream event id (expected a UUID or a Code Stream link).")


EXECUTION_USAGE: Final = "<execution id or link>"


def parse_execution_target(words: list[str], *, command: str) -> str:
    """``<execution id | link to it>`` -> the lower-case execution id. A link to an event is
    refused with a hint: cancel and pause act on executions."""
    if not words:
        raise UsageError(f"`{command}` needs an execution id or link.")
    if len(words) > 1:
        raise UsageError(f"`{command}` takes one execution id or link, got {len(words)} words.")
    target = _unwrap_link(words[0])
    if _UUID.match(target):
        return target.lower()
    matches = list(_IN_URL.finditer(target)) if "/" in target else []
    for match in reversed(matches):
        segment = match.group("segment").lower()
        if segment in ("executions", "execution"):
            return match.group("id").lower()
        if segment in _COLLECTION_KIND:
            raise UsageError(
                f"That link is to an event, not an execution. `{command}` acts on a running execution: "
                "paste its id or link (the summary's execution link)."
            )
    shown = target if len(target) <= 60 else target[:57] + "..."
    raise UsageError(f"`{shown}` is not a Code Stream execution id (expected a UUID or an execution link).")
