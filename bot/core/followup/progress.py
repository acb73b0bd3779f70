"""What a tracker shows: the Outcome its summary was rendered from, kept in memory by ``track()``
or rebuilt after a restart from the action row and one read of the event."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.models import Event, EventKind, Execution, as_kind
from bot.core.followup.timing import PollBudget
from bot.core.intents import request_from_row
from bot.core.requests import ActionRequest, Actor, Outcome, new_request_id
from bot.store import ActionRecord, FollowupRecord, Store

log = logging.getLogger("bot.core.followup")

NOT_FOUND_STATUS: Final = "NOT_FOUND"  # stored when Code Stream no longer has the execution
UNKNOWN_STATUS: Final = "UNKNOWN"  # stored when the summary showed no status yet
# Outcomes kept in memory (about 3 KB each). Past this many followed at once, the oldest are
# rebuilt from the store and one read of the event (charged to the poll budget) when they end.
_OUTCOME_CACHE: Final = 500


def new_execution_id(outcome: Outcome) -> str | None:
    """The execution the action started. ``perform`` sets ``execution_url`` only from the event
    read after the action, so without it ``outcome.event`` may still name the old execution."""
    if outcome.execution is not None and outcome.execution.id:
        return outcome.execution.id
    if outcome.execution_url and outcome.event is not None:
        return outcome.event.execution_id
    return None


def shown_status(outcome: Outcome) -> str:
    """The status the posted summary shows (what ``render_outcome`` put there)."""
    status = outcome.execution.status if outcome.execution is not None else None
    if not status and outcome.event is not None:
        status = outcome.event.execution_status
    return (status or UNKNOWN_STATUS).strip().upper() or UNKNOWN_STATUS


def last_known(record: FollowupRecord) -> Execution:
    """An Execution standing for the last status seen, when Code Stream cannot be read."""
    status = None if record.status in (UNKNOWN_STATUS, NOT_FOUND_STATUS) else record.status
    return Execution.model_validate({"id": record.execution_id, "status": status})


class OutcomeMemory:
    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        budget: PollBudget,
        *,
        execution_url: Callable[[str], str],
        on_event_read: Callable[[], None],
    ) -> None:
        self.store = store
        self.client = client
        self.budget = budget
        self.execution_url = execution_url
        self.on_event_read = on_event_read  # counted in the tracker's stats
        self._outcomes: OrderedDict[int, Outcome] = OrderedDict()

    def remember(self, fid: int, outcome: Outcome) -> None:
        self._outcomes[fid] = outcome
        self._outcomes.move_to_end(fid)
        while len(self._outcomes) > _OUTCOME_CACHE:
            self._outcomes.popitem(last=False)

    def forget(self, fid: int) -> None:
        self._outcomes.pop(fid, None)

    async def outcome(self, record: FollowupRecord, now: datetime, *, final: bool) -> Outcome | None:
        """The Outcome the summary was rendered from: kept in memory by ``track()``, else rebuilt
        from the action row and a fresh read of the event (one extra read, charged to the
        budget). None when the event cannot be read right now; with ``final`` (the tracker ends
        either way) an outcome without the event facts instead."""
        assert record.id is not None
        cached = self._outcomes.get(record.id)
        if cached is not None:
            return cached
        action: ActionRecord | None = None
        if record.action_id is not None:
            action = await self.store.actions.get(record.action_id)
        kind = as_kind(record.kind)
        event: Event | None = None
        if kind is not None:
            self.budget.take(now.timestamp())
            self.on_event_read()
            try:
                event = await self.client.get_event(kind, record.event_id)
            except (NotFound, InvalidId):
                event = None
            except CodeStreamError as exc:
                log.info("event read failed", extra={"followup_id": record.id, "error_class": type(exc).__name__})
                if not final:
                    return None
        outcome = self._rebuild(record, action, kind or "git", event)
        self.remember(record.id, outcome)
        return outcome

    def _rebuild(
        self, record: FollowupRecord, action: ActionRecord | None, kind: EventKind, event: Event | None
    ) -> Outcome:
        if action is None:
            log.info("no action row for a follow-up; assuming a rerun", extra={"followup_id": record.id})
        if action is not None:
            request = request_from_row(action, kind, alert=None)
        else:
            request = ActionRequest(
                verb="rerun",
                kind=kind,
                event_id=record.event_id,
                actor=Actor(record.actor_id or "someone"),
                surface="button",
                channel_id=record.channel_id,
                request_id=new_request_id(),
            )
        return Outcome(
            request,
            "started",
            event=event,
            execution_url=self.execution_url(record.execution_id),
            action_id=record.action_id,
            at=action.created_at if action else record.created_at,
        )
