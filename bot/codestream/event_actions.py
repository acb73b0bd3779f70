"""Resuming or rerunning an event: ``POST /codestream/api/{collection}/{id}?action=Resume|Rerun``,
what it did (``ActionResult``), and how a read of the event tells whether it started a new
execution (what an ambiguous answer is resolved by).

Import these from :mod:`bot.codestream.client`, with the client that returns them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.codestream.errors import CodeStreamError
from bot.codestream.events import Event

ActionState = Literal["succeeded", "not_started", "unknown"]


@dataclass(frozen=True)
class ActionResult:
    """What a resume/rerun did.

    ``succeeded``: Code Stream accepted it (``event`` shows the new execution when known).
    ``not_started``: nothing was sent (``error`` says why); safe to try again.
    ``unknown``: the request may have reached Code Stream and no new execution was seen yet;
    the caller must keep reading the event back (``error`` says why).
    """

    state: ActionState
    before: Event
    event: Event | None = None
    error: CodeStreamError | None = None
    reconciled: bool = False


def new_execution(before: Event, after: Event) -> bool:
    """Whether ``after`` shows an execution that ``before`` did not (the action ran)."""
    return execution_changed(before.execution_index, before.execution_link, after)


def execution_changed(index: int | None, link: str | None, after: Event) -> bool:
    changed = (after.execution_index, after.execution_link) != (index, link)
    return changed and (after.execution_link is not None or after.execution_index is not None)
