"""One intent's life, whatever it acts on: the runner every mutating action shares.

An *adapter* (``Target``) says only what is specific to what is acted on — an event (rerun,
resume), an execution (cancel, pause, resume) or an approval (approve, reject): the intent's key,
the audit row, how to read the target, when it can no longer be acted on, the one Code Stream
call, and how a known answer closes the row. The runner owns the rest, the same for all:

1. claim the intent and, in the same transaction, write its audit row (both or neither): one
   intent per target at a time, across double clicks, Slack retries and replicas. The row says
   ``claimed`` when the target is read again under the claim (nothing sent yet: a process that
   dies here leaves a row the reconciler closes at once), else ``pending``;
2. report the claim through the caller's ``Progress`` port (Slack marks the alert);
3. read the target again under the claim (adapters that ask for it) and check it can still be
   acted on (decided meanwhile, already paused, a newer run): if not, nothing is sent;
4. the row becomes ``pending``, then ONE call under the post budget. A definite refusal closes
   the row ``failed``; an ambiguous answer (a timeout, a lost connection, an interruption)
   marks it ``unknown`` and the reconciler reads the target back. Never a second call;
5. a known answer closes the row and ends the claim in one transaction.

The reconciler's side (``ReadBack``, ``settle``) lives in ``bot.core.settle``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from bot.codestream.errors import CodeStreamError, Unavailable
from bot.core.errors import BotError, StoreUnavailable
from bot.core.intents import (
    IN_FLIGHT_CLAIM_SECONDS,
    about_to_send,
    audit_row,
    drop_orphan,
    finish_action,
    give_up_unsent,
    hand_to_reconciler,
    mark_unknown,
    record_quietly,
    retry_write,
    row_intent_key,
)
from bot.core.requests import Actor, MessageRef
from bot.store import ActionRecord, Claim, Store

log = logging.getLogger("bot.core.lifecycle")

_R = TypeVar("_R", contravariant=True)  # the request
_T = TypeVar("_T")  # what is acted on, as read from Code Stream
_T_contra = TypeVar("_T_contra", contravariant=True)

#: What the one call did: ``succeeded`` (Code Stream took it), ``not_started`` (nothing was
#: sent: safe to try again), ``ignored`` (answered, but read back it did not take effect),
#: ``unknown`` (it may have arrived: read back until the deadline).
SentState: TypeAlias = Literal["succeeded", "not_started", "ignored", "unknown"]
#: How a run ended: ``lost`` (someone else's intent is in flight: a duplicate), ``stale`` (it
#: can no longer be acted on: nothing was sent), ``failed`` (a definite refusal, or the store
#: refused the claim), or as the call went.
RunState: TypeAlias = Literal["lost", "stale", "failed", "succeeded", "not_started", "ignored", "unknown"]


@dataclass(frozen=True)
class Intent:
    key: str  # ``intent:<kind>:<id>``: one intent per target at a time, whatever the action
    holder: str  # the request id
    data: dict[str, Any]  # who asked for what: the losers are told


@dataclass(frozen=True)
class Sent(Generic[_T]):
    """The adapter's reading of its one call's answer."""

    state: SentState
    before: _T  # the target as read before the call
    after: _T | None = None  # as answered or read back, when known
    error: CodeStreamError | None = None


@dataclass(frozen=True)
class Closing:
    """How a known outcome closes the row, and how the claim ends: kept ``settle_for`` more
    seconds (the dedupe window after a run started) or released (None)."""

    status: str
    error: Exception | None = None
    settle_for: float | None = None
    execution_link: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True)
class Run(Generic[_T]):
    """What the runner saw; the adapter turns it into its outcome."""

    state: RunState
    target: _T | None  # as last read
    error: CodeStreamError | BotError | Exception | None = None
    action_id: int | None = None
    settle_by: datetime | None = None  # unknown: read back until then
    claim: Claim | None = None  # lost: the winner's claim (who, what, since when)
    answered: bool = False  # after a call: ``target`` is as answered or read back after it


class Target(Protocol[_R, _T]):
    """An adapter: what is specific to one kind of target."""

    @property
    def reread(self) -> bool:
        """Read the target again under the claim before sending (``claimed`` row first)."""

    def intent(self, request: _R) -> Intent: ...

    def row(self, request: _R, status: str, target: _T | None, error: Exception | None) -> ActionRecord:
        """The audit row of this request with this status."""

    async def read(self, request: _R) -> _T:
        """The target as Code Stream has it now; raises CodeStreamError."""

    def stale(self, request: _R, target: _T) -> Closing | None:
        """Why it can no longer be acted on (nothing is sent), or None."""

    async def send(self, request: _R, target: _T) -> Sent[_T]:
        """The one call; raises CodeStreamError for a definite refusal (4xx)."""

    async def refused(self, request: _R, error: CodeStreamError) -> tuple[_T, Closing] | None:
        """A definite refusal that a fresh read explains (the action was already taken, and the
        read before lagged): the target as read and how to close; None to report ``error``."""

    def closing(self, request: _R, sent: Sent[_T]) -> Closing:
        """How a known answer (succeeded, not_started, ignored) closes the row."""


class Asked(Protocol):
    """What every request has: who asked, from where."""

    @property
    def actor(self) -> Actor: ...
    @property
    def surface(self) -> str: ...
    @property
    def channel_id(self) -> str | None: ...
    @property
    def request_id(self) -> str: ...


class Progress(Protocol[_T_contra]):
    """Told once the caller has won the claim, before anything is sent: the port through which
    the Slack layer marks the alert "rerun requested"."""

    async def claimed(self, target: _T_contra) -> None: ...


@dataclass
class Lifecycle:
    """The runner: one per process, shared by every adapter."""

    store: Store
    owner: str = "codestream-bot"  # this replica: it finishes what it starts
    post_budget_seconds: float = 120.0  # how long the one call (with its unsent retries) may take
    reconcile_seconds: float = 300.0  # after that, how long the reconciler reads back
    wake_reconciler: Callable[[], None] = field(default=lambda: None)
    # Rows whose outcome this process knows but could not record (the database was away): the
    # reconciler reads them back as soon as it can, not after its "stuck" delay.
    unrecorded: set[int] = field(default_factory=set)
    # Claims this process asked for and was told failed, though they may have been written (the
    # commit's answer lost): (key, holder) pairs. Nothing was sent for them; ``drop_orphans`` (the
    # reconciler's rounds, or the next request for the key) releases them.
    orphans: set[tuple[str, str]] = field(default_factory=set)

    @property
    def open_seconds(self) -> float:
        """How long an open row may stay open before the reconciler says "did not start"."""
        return self.post_budget_seconds + self.reconcile_seconds

    def row(
        self, request: Asked, status: str, error: Exception | None, *, kind: str, target_id: str, **facts: Any
    ) -> ActionRecord:
        """An audit row of ``request`` on ``kind`` ``target_id``; ``facts``: the action, the
        target's project and pipeline, and what else the adapter records."""
        return audit_row(
            now=self.store.now(),
            kind=kind,
            target_id=target_id,
            actor=request.actor,
            surface=request.surface,
            channel_id=request.channel_id,
            request_id=request.request_id,
            status=status,
            error=error,
            owner=self.owner,
            open_seconds=self.open_seconds,
            **facts,
        )

    async def audit(self, row: ActionRecord) -> int | None:
        """The row of a request that ends before any claim (denied, failed, duplicate)."""
        return await record_quietly(self.store, row)

    async def run(
        self, target: Target[_R, _T], request: _R, current: _T, progress: Progress[_T] | None = None
    ) -> Run[_T]:
        intent = target.intent(request)
        first = "claimed" if target.reread else "pending"
        try:
            row = target.row(request, first, current, None)
            claim, action_id = await self.store.intents.claim(
                intent.key, intent.holder, IN_FLIGHT_CLAIM_SECONDS, intent.data, row
            )
        except Exception as exc:
            # Without the claim and its row "exactly once" cannot be promised: refuse rather than
            # risk two runs. Nothing was sent; the claim may have been written all the same (its
            # commit's answer lost), so it is remembered to be released.
            log.exception("store unavailable for claim", extra={"error_class": type(exc).__name__})
            self.orphans.add((intent.key, intent.holder))
            self.wake_reconciler()
            return Run("failed", current, StoreUnavailable())
        if claim.won:
            self.orphans.discard((intent.key, intent.holder))  # a holder that won is no orphan
        elif (intent.key, claim.holder) in self.orphans:
            # Held by this process's own orphan: released, then the claim is asked for again.
            dropped = await drop_orphan(self.store, self.owner, intent.key, claim.holder)
            if dropped is not None:
                self.orphans.discard((intent.key, claim.holder))
            if dropped:
                return await self.run(target, request, current, progress)
        if not claim.won:
            return Run("lost", current, claim=claim)
        assert action_id is not None  # intents.claim returns the row's id when it won
        try:
            return await self._claimed(target, request, current, intent, action_id, progress)
        except BaseException:
            # Interrupted (a shutdown past its grace) before anything was sent: a ``claimed`` row
            # closes as not started and the claim is released. Once sent, it is marked unknown.
            await asyncio.shield(
                give_up_unsent(self.store, self.owner, action_id, key=intent.key, holder=intent.holder)
            )
            raise

    async def _claimed(
        self,
        target: Target[_R, _T],
        request: _R,
        current: _T,
        intent: Intent,
        action_id: int,
        progress: Progress[_T] | None,
    ) -> Run[_T]:
        if target.reread:
            try:
                current = await target.read(request)  # a request that ended a moment ago shows here
            except CodeStreamError as exc:
                await self.close(intent, action_id, Closing("failed", exc))
                return Run("failed", None, exc, action_id)
        stale = target.stale(request, current)
        if stale is not None:
            await self.close(intent, action_id, stale)
            return Run("stale", current, stale.error, action_id)
        if progress is not None:
            try:
                await progress.claimed(current)
            except Exception:
                log.exception("showing the claim failed; carrying on with the action")
        if target.reread:
            try:
                await about_to_send(self.store, self.owner, action_id)
            except Exception as exc:
                log.exception("store unavailable for the audit row", extra={"error_class": type(exc).__name__})
                await self.close(intent, action_id, Closing("failed", StoreUnavailable()))
                return Run("failed", current, StoreUnavailable(), action_id)
        return await self._send(target, request, current, intent, action_id)

    async def _send(self, target: Target[_R, _T], request: _R, current: _T, intent: Intent, action_id: int) -> Run[_T]:
        try:
            # Bounded, so that the reconciler (which takes over rows open longer than this)
            # never works on an action this process is still waiting on.
            async with asyncio.timeout(self.post_budget_seconds):
                sent = await target.send(request, current)
        except TimeoutError:
            return await self._unknown(current, action_id, Unavailable("Code Stream did not answer in time."))
        except CodeStreamError as exc:
            # A definite refusal (4xx, or nothing could be sent): nothing ran; a retry is fine.
            explained = await target.refused(request, exc)
            if explained is not None:
                shown, closing = explained
                await self.close(intent, action_id, closing)
                return Run("stale", shown, closing.error, action_id)
            await self.close(intent, action_id, Closing("failed", exc))
            return Run("failed", current, exc, action_id)
        except BaseException:
            # Cancelled or a bug while the call may be on its way: unknown until read back.
            await asyncio.shield(
                mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error_class="Interrupted")
            )
            raise
        if sent.state == "unknown":
            return await self._unknown(sent.before, action_id, sent.error)
        closing = target.closing(request, sent)
        await self.close(intent, action_id, closing)
        after = sent.after if sent.after is not None else sent.before
        return Run(sent.state, after, closing.error, action_id, answered=sent.after is not None)

    async def _unknown(self, current: _T, action_id: int, error: CodeStreamError | None) -> Run[_T]:
        settle_by = await mark_unknown(self.store, self.owner, action_id, self.reconcile_seconds, error=error)
        return Run("unknown", current, error, action_id, settle_by)

    async def drop_orphans(self) -> None:
        """Release the claims this process was told failed but which may have been written."""
        for key, holder in list(self.orphans):
            if await drop_orphan(self.store, self.owner, key, holder) is not None:
                self.orphans.discard((key, holder))

    async def close(self, intent: Intent, action_id: int, closing: Closing) -> None:
        """Close the row with a known outcome and end the claim, in one transaction."""
        recorded = await finish_action(
            self.store,
            self.owner,
            action_id,
            closing.status,
            key=intent.key,
            holder=intent.holder,
            settle_for=closing.settle_for,
            error=closing.error,
            execution_link=closing.execution_link,
            execution_id=closing.execution_id,
        )
        if not recorded:
            self.unrecorded.add(action_id)
            self.wake_reconciler()

    async def hand_over(self, action_id: int, shown_at: MessageRef | None) -> None:
        """An unknown outcome has been shown (``shown_at``: where, to update in place): from now
        on the reconciler reads it back and settles it."""
        await hand_to_reconciler(self.store, self.owner, action_id, shown_at, self.wake_reconciler)

    async def quietly_read_action(self, action_id: int) -> ActionRecord | None:
        """An audit row, or None when it cannot be read (logged)."""
        try:
            return await retry_write(lambda: self.store.actions.get(action_id))
        except Exception:
            log.warning("could not read an audit row", exc_info=True, extra={"action_id": action_id})
            return None

    async def settle(self, row: ActionRecord, changes: dict[str, Any], *, settle_for: float | None) -> bool:
        """The reconciler's close of an open row it read back: the row, then the claim (kept
        ``settle_for`` seconds, or released when None). False when the row was settled or taken
        over meanwhile (then the claim is left to whoever did)."""
        assert row.id is not None
        action_id = row.id
        if not await retry_write(lambda: self.store.actions.update_open(action_id, self.owner, **changes)):
            self.unrecorded.discard(action_id)
            return False
        self.unrecorded.discard(action_id)
        key, holder = row_intent_key(row), row.request_id or ""
        if settle_for is None:
            await retry_write(lambda: self.store.claims.release(key, holder))
        else:
            await retry_write(lambda: self.store.claims.settle(key, holder, settle_for))
        return True
