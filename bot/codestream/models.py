"""pydantic models of the Code Stream resources the bot reads, in one place to import from.

They live in ``fields`` (the lenient field types: real servers disagree with the spec, so a
strange field is coerced or dropped, never fatal), ``events`` (git, Gerrit and Docker registry
events), ``executions`` (pipeline runs and their statuses) and ``pages`` (``about`` and the
list envelopes).
"""

from __future__ import annotations

from bot.codestream.events import (
    EVENT_KINDS,
    EVENT_MODELS,
    KIND_COLLECTION,
    KIND_LABEL,
    CodeStreamAction,
    CodeStreamEvent,
    DockerRegistryEvent,
    Event,
    EventKind,
    GerritEvent,
    GitEvent,
    as_kind,
    parse_event,
)
from bot.codestream.executions import FAILED_STATUSES, TERMINAL_STATUSES, Execution
from bot.codestream.fields import CodeStreamModel, id_from_link, parse_time
from bot.codestream.pages import About, DocumentPage, EventPage

__all__ = [
    "EVENT_KINDS",
    "EVENT_MODELS",
    "FAILED_STATUSES",
    "KIND_COLLECTION",
    "KIND_LABEL",
    "TERMINAL_STATUSES",
    "About",
    "CodeStreamAction",
    "CodeStreamEvent",
    "CodeStreamModel",
    "DockerRegistryEvent",
    "DocumentPage",
    "Event",
    "EventKind",
    "EventPage",
    "Execution",
    "GerritEvent",
    "GitEvent",
    "as_kind",
    "id_from_link",
    "parse_event",
    "parse_time",
]
