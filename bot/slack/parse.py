"""One parser for the words people type, shared by the slash command, mentions and thread
replies: ``rerun``, ``resume``, ``show``, kinds, ids and pasted Code Stream URLs.

Pure: no Slack, no I/O. Malformed input raises UsageError with a short usage line; nothing
here ever reaches Code Stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from bot.codestream.models import EventKind
from bot.core.errors import UsageError

Command: TypeAlias = Literal["rerun", "resume", "show", "list", "help", "audit"]

USAGE: Final = (
    "Usage: `/codestream rerun|resume|show [git|gerrit|docker] <event id or Code Stream link>`, "
    "`/codestream list`, `/codestream audit [event id|@user] [--since 7d]`, `/codestream help`"
)
_MAX_TEXT: Final = 2000
_ALIASES: Final[dict[str, Command]] = {
    "rerun": "rerun",
    "re-run": "rerun",
    "retry": "rerun",
    "resume": "resume",
    "show": "show",
    "status": "show",
    "info": "show",
    "list": "list",
    "failed": "list",
    "failures": "list",
    "help": "help",
    "?": "help",
    "audit": "audit",
}
_KINDS: Final[dict[str, EventKind]] = {
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
_MENTION: Final = re.compile(r"^\s*<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>[\s:,]*")
_SLACK_LINK: Final = re.compile(r"^<([^>|]+)(?:\|[^>]*)?>$")


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    kind: EventKind | None = None  # always set for rerun/resume/show; None for "list" means all kinds
    event_id: str | None = None
    args: tuple[str, ...] = ()


def _unwrap_link(word: str) -> str:
    """Slack sends links in text as ``<url>`` or ``<url|label>``."""
    match = _SLACK_LINK.match(word)
    return match.group(1) if match else word


def parse_target(words: list[str], *, command: str) -> tuple[EventKind, str]:
    """``[kind] <id | url>`` -> (kind, lower-case id)."""
    explicit: EventKind | None = None
    if words and words[0].lower() in _KINDS:
        explicit = _KINDS[words.pop(0).lower()]
    if not words:
        raise UsageError(f"`{command}` needs an event id. {USAGE}")
    if len(words) > 1:
        raise UsageError(f"`{command}` takes one event id, got {len(words)} words. {USAGE}")
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
    raise UsageError(f"`{shown}` is not a Code Stream event id (expected a UUID or a Code Stream link). {USAGE}")


def parse_command(text: str) -> ParsedCommand:
    """Parse the text of ``/codestream ...`` or of an @mention (mention already stripped)."""
    if len(text) > _MAX_TEXT:
        raise UsageError(f"That command is too long. {USAGE}")
    words = text.split()
    if not words:
        return ParsedCommand("help")
    command = _ALIASES.get(words[0].lower())
    if command is None:
        shown = words[0] if len(words[0]) <= 30 else words[0][:27] + "..."
        raise UsageError(f"Unknown command `{shown}`. {USAGE}")
    rest = words[1:]
    if command in ("rerun", "resume", "show"):
        kind, event_id = parse_target(rest, command=command)
        return ParsedCommand(command, kind, event_id)
    if command == "list":
        if rest and rest[0].lower() in _KINDS and len(rest) == 1:
            return ParsedCommand("list", _KINDS[rest[0].lower()])
        if rest:
            raise UsageError(f"`list` takes at most an event kind (git, gerrit, docker). {USAGE}")
        return ParsedCommand("list")
    if command == "audit":
        return ParsedCommand("audit", args=tuple(rest))
    return ParsedCommand("help")


def strip_mention(text: str, bot_user_id: str | None = None) -> str:
    """``<@U0BOT> rerun`` -> ``rerun``. With ``bot_user_id`` only the bot's own leading mention
    is stripped: ``<@U0BOB> rerun`` is Carol asking Bob, not the bot."""
    if bot_user_id is None:
        return _MENTION.sub("", text, count=1)
    match = _MENTION.match(text)
    if match is None:
        return text
    return text[match.end() :] if match.group("user") == bot_user_id else text


ThreadVerb: TypeAlias = Literal["rerun", "resume", "show"]
_THREAD_WORDS: Final[dict[str, ThreadVerb]] = {"rerun": "rerun", "resume": "resume", "status": "show"}


def parse_thread_reply(text: str, bot_user_id: str | None) -> ThreadVerb | None:
    """A reply in an alert's thread: exactly ``rerun``, ``resume`` or ``status`` (any case,
    optionally after the bot's own @mention, surrounding whitespace and a trailing ! or .
    ignored). Anything else — a mention of someone else included — is people talking: None,
    and the bot stays silent."""
    if len(text) > 200:
        return None
    word = strip_mention(text, bot_user_id or "").strip().rstrip("!.").strip().lower()
    return _THREAD_WORDS.get(word)
