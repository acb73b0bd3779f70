"""Storm digests: when many failures are due for one channel at once, one message lists them.

A digest row holds what it shows (``DigestFacts``: the event as read and why it failed) and what
happened to it since (``RowState``: who asked for what, and how it came out), so a redraw needs
no Code Stream read. ``DigestBoard`` keeps Slack showing a digest's latest state: every change
bumps the digest's version in the store; a redraw draws the latest version and records it as
drawn, and draws again when another change arrived meanwhile, so concurrent changes (a "Rerun
all", the follow-through, another replica) end with Slack showing the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.codestream.models import TERMINAL_STATUSES, Event, as_kind, parse_event
from bot.core.failures import FailureContext
from bot.core.requests import Outcome
from bot.store import DigestRecord, DigestRow, Store

log = logging.getLogger(__name__)

MAX_ROWS: Final = 40  # rows in one digest (Slack: 50 blocks a message); more start a new digest
SAVE_WAIT: Final = 10.0  # how long a click on a digest waits for its record to be saved
SWEEP_EVERY: Final = 10  # watcher cycles between two looks for digests left undrawn anywhere
MAX_REDRAWS: Final = 50  # draws in a row by one drawer before leaving the rest to the next cycle
_RETRYABLE: Final = frozenset({"failed", "not_started", "denied"})

# The Slack side: draw this digest (with these rows) over its message; whether Slack took it.
Draw = Callable[[DigestRecord, Sequence[DigestRow]], Awaitable[bool]]


class DigestFacts(BaseModel):
    """What a row shows: the event as it was read, and why its execution failed."""

    model_config = ConfigDict(extra="ignore")

    event: dict[str, Any]
    stage: str | None = None
    task: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, event: Event, failure: FailureContext | None) -> DigestFacts:
        raw = event.model_dump(mode="json", by_alias=True, exclude_none=True)
        if failure is None:
            return cls(event=raw)
        return cls(event=raw, stage=failure.stage, task=failure.task, error=(failure.message or "")[:500] or None)

    @classmethod
    def read(cls, value: dict[str, Any]) -> DigestFacts:
        """Leniently: a row whose facts cannot be read still shows (as an unknown pipeline)."""
        try:
            return cls.model_validate(value)
        except ValidationError:
            return cls(event={})

    def parsed(self, kind: str) -> Event | None:
        known = as_kind(kind)
        if known is None:
            return None
        try:
            return parse_event(known, self.event)
        except ValidationError:
            return None

    @property
    def failure(self) -> FailureContext | None:
        if not (self.stage or self.task or self.error):
            return None
        return FailureContext(stage=self.stage, task=self.task, message=self.error)


class RowState(BaseModel):
    """What happened to a row since it was listed: an action, and how it came out so far."""

    model_config = ConfigDict(extra="ignore")

    verb: str
    actor_id: str
    # "requested" (claimed, Code Stream being asked), "checking" (unknown, being read back), or
    # an outcome status: started, failed, not_started, unknown, denied, duplicate.
    status: str
    execution_url: str | None = None
    execution_index: int | None = None
    final_status: str | None = None  # the followed execution's status, once started
    reason: str | None = None

    @classmethod
    def requested(cls, verb: str, actor_id: str) -> RowState:
        return cls(verb=verb, actor_id=actor_id, status="requested")

    @classmethod
    def after(
        cls,
        outcome: Outcome,
        *,
        status: str | None = None,
        final_status: str | None = None,
        execution_index: int | None = None,
    ) -> RowState:
        """The row once ``outcome`` is known (``status`` overrides it, e.g. "checking"); a
        started run's ``final_status`` and number come from the follow-through when it has them."""
        reason = getattr(outcome.error, "user_message", None) if outcome.error is not None else None
        started = outcome.status == "started"
        index = outcome.event.execution_index if started and outcome.event is not None else None
        index = execution_index if execution_index is not None else index
        return cls(
            verb=outcome.request.verb,
            actor_id=outcome.request.actor.user_id,
            status=status or outcome.status,
            execution_url=outcome.execution_url if started else None,
            execution_index=index,
            final_status=final_status,
            reason=reason if isinstance(reason, str) else None,
        )

    @classmethod
    def read(cls, value: dict[str, Any] | None) -> RowState | None:
        if value is None:
            return None
        try:
            return cls.model_validate(value)
        except ValidationError:
            return None

    @property
    def open(self) -> bool:
        """Nobody is on it any more and it is still broken: it may be acted on again (the
        action failed or did not start, or its run ended without passing)."""
        if self.status == "started":
            final = (self.final_status or "").upper()
            return final in TERMINAL_STATUSES and final != "COMPLETED"
        return self.status in _RETRYABLE


def still_failing(state: RowState | None) -> bool:
    """A row "Rerun all" takes: nothing happened to it yet, or what happened left it broken."""
    return state is None or state.open


def row_for(event: Event, failure: FailureContext | None) -> DigestRow:
    assert event.id is not None
    return DigestRow(
        kind=event.kind,
        event_id=event.id,
        execution_index=event.execution_index,
        facts=DigestFacts.of(event, failure).model_dump(exclude_none=True),
    )


class DigestBoard:
    """Changes to digests, and redraws that leave Slack showing the newest state."""

    def __init__(self, store: Store, draw: Draw) -> None:
        self.store = store
        self.draw = draw
        self._locks: dict[int, asyncio.Lock] = {}
        self._dirty: set[int] = set()  # changed since the drawer under way read it
        # A draw failed (or this process just started, after a crash perhaps): some digest may
        # show an old state. Only then does the sweep read the store.
        self._sweep = True
        self._cycles = 0

    async def at(self, channel: str, ts: str, *, wait: float = 0.0) -> DigestRecord | None:
        """The digest posted as ``ts``, or None when that message is not one. ``wait``: the
        message is known to be a digest, so give its record that long to be saved (Slack shows
        a digest a moment before the store has it). Raises when the store cannot say: callers
        must not take "cannot tell" for "not a digest" (one alert drawn over a digest)."""
        delay, waited = 0.05, 0.0
        while True:
            failed: Exception | None = None
            try:
                found = await self.store.digests.at(channel, ts)
            except Exception as exc:  # noqa: BLE001 - tried again while waiting, raised after
                failed, found = exc, None
            if found is not None:
                return found
            if waited >= wait:
                if failed is not None:
                    raise failed
                return None
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 1.0)

    async def set_state(self, digest: DigestRecord, kind: str, event_id: str, state: RowState) -> bool:
        """One row's new state, then a redraw; whether Slack shows it."""
        assert digest.id is not None
        version = await self.store.digests.set_row_state(digest.id, kind, event_id, state.model_dump(exclude_none=True))
        if version is None:
            return False
        return await self.redraw(digest.id)

    async def redraw(self, digest_id: int, *, follow: bool = True) -> bool:
        """Draw the digest's newest version unless Slack shows it already; whether it does (or
        will: a redraw already under way in this process draws this change too, right after its
        own, so changes arriving together cost one or two draws, not one each). After each draw
        the version is read again and drawn again if another replica changed it meanwhile, so the
        last draw to reach Slack is the newest state. ``follow=False`` (the watcher): one draw,
        the changes that come after are drawn by whoever makes them."""
        self._dirty.add(digest_id)
        if len(self._locks) > 1000:  # digests are few; forget the idle ones now and then
            self._locks = {k: v for k, v in self._locks.items() if v.locked()}
        lock = self._locks.setdefault(digest_id, asyncio.Lock())
        if lock.locked():
            return True  # the drawer under way sees the flag and draws again
        async with lock:
            mine: int | None = None  # the version this loop last drew
            for _ in range(MAX_REDRAWS):
                self._dirty.discard(digest_id)
                read = await self.store.digests.get(digest_id)
                if read is None:
                    return False
                digest, rows = read
                newest = digest.drawn >= digest.version if mine is None else mine >= digest.version
                if newest and digest_id not in self._dirty:
                    return True
                if not newest:
                    if not await self.draw(digest, rows):
                        self._sweep = True
                        return False  # left undrawn: the watcher draws it again next cycle
                    await self.store.digests.mark_drawn(digest_id, digest.version)
                    mine = digest.version
                if not follow:
                    return True
            return True

    async def redraw_undrawn(self) -> int:
        """Digests whose last change Slack missed (a failed redraw, a crash): drawn again. Reads
        the store only after a failed draw here, or once after start."""
        self._cycles += 1
        # Also now and then: a draw that failed on another replica (or a crash between a stale
        # draw and the newest one) leaves a digest this process has no flag for.
        if not self._sweep and self._cycles % SWEEP_EVERY:
            return 0
        self._sweep = False
        drawn = 0
        for digest_id in await self.store.digests.undrawn():
            drawn += await self.redraw(digest_id)
        return drawn
