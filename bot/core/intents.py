"""The intent lifecycle's shared pieces: the claim key every surface and replica contends for,
how long it is held, and store writes that must survive a passing error (they happen after Code
Stream may have acted). Used by ``perform``, the reconciler and the follow-through."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, get_args

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.codestream.models import Event, EventKind
from bot.core.errors import NotSent
from bot.core.metrics import record_outcome
from bot.core.requests import ActionRequest, Actor, MessageRef, Outcome, Surface, new_request_id
from bot.core.verbs import stored_verb
from bot.store import ActionRecord, Store

log = logging.getLogger("bot.core.perform")
_T = TypeVar("_T")

#: The claim of an intent in flight. It never lapses on its own in practice: the action (or the
#: reconciler, after a crash) settles it when the outcome is known.
IN_FLIGHT_CLAIM_SECONDS: Final = 7 * 86_400.0
#: Writes after Code Stream acted: tried this many times (about 3 s in all) before giving up
#: to the reconciler, which finds the row still open and settles it from a read-back.
WRITE_ATTEMPTS: Final = 6


INTENT_PREFIX: Final = "intent:"


def row_intent_key(row: ActionRecord) -> str:
    """The claim an audit row's intent holds (its holder is the row's request id), whatever the
    target: events, executions and approvals share the key's shape."""
    return f"{INTENT_PREFIX}{row.kind}:{row.event_id}"


def intent_key(kind: EventKind, event_id: str) -> str:
    """One intent per event at a time, whatever the verb: a rerun and a resume of the same event
    must not both run."""
    return f"{INTENT_PREFIX}{kind}:{event_id}"


async def retry_write(operation: Callable[[], Awaitable[_T]]) -> _T:
    """A store write that must not be lost to a passing error (a lock, a failover)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        stop=stop_after_attempt(WRITE_ATTEMPTS),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await operation()
    raise AssertionError("unreachable")  # pragma: no cover


def without_execution(event: Event) -> Event:
    return event.model_copy(update={"execution_link": None, "execution_index": None, "execution_status": None})


def user_message(error: Exception | None) -> str | None:
    if error is None:
        return None
    message = getattr(error, "user_message", None)
    return str(message) if message else type(error).__name__


def log_outcome(outcome: Outcome, seconds: float) -> None:
    """One line per outcome, and its metric."""
    request = outcome.request
    record_outcome(request.verb, request.surface, outcome.status)
    log.info(
        "action %s %s",
        request.verb,
        outcome.status,
        extra={
            "request_id": request.request_id,
            "actor_id": request.actor.user_id,
            "actor_name": request.actor.name,
            "surface": request.surface,
            "channel_id": request.channel_id,
            "kind": request.kind,
            "event_id": request.event_id,
            "verb": request.verb,
            "result": outcome.status,
            "error_class": type(outcome.error).__name__ if outcome.error else None,
            "execution_url": outcome.execution_url,
            "action_id": outcome.action_id,
            "duration_ms": round(seconds * 1000),
        },
    )


_SURFACES: Final[dict[str, Surface]] = {s: s for s in get_args(Surface)}


def stored_surface(value: str) -> Surface:
    """An audit row's surface; rows written by other releases fall back to a button."""
    return _SURFACES.get(value, "button")


def request_from_row(row: ActionRecord, kind: EventKind, *, alert: MessageRef | None) -> ActionRequest:
    """The request an audit row records, rebuilt after a restart or on another replica. Rows
    written by other releases fall back to a rerun from a button."""
    return ActionRequest(
        verb=stored_verb(row.action),
        kind=kind,
        event_id=row.event_id,
        actor=Actor(row.actor_id, row.actor_name),
        surface=stored_surface(row.surface),
        channel_id=row.channel_id,
        request_id=row.request_id or new_request_id(),
        alert=alert,
    )


# --- an open action's row: closed, marked unknown, or handed to the reconciler ---------------
# Shared by ``perform`` (events) and ``bot.core.control`` (executions): one lifecycle for both.


def _closing(
    store: Store, status: str, error: Exception | None, execution_link: str | None, execution_id: str | None
) -> dict[str, Any]:
    """The changes that record a known outcome on an open row."""
    return {
        "status": status,
        "error": user_message(error),
        "error_class": type(error).__name__ if error else None,
        "execution_link": execution_link,
        "execution_id": execution_id,
        "finished_at": store.now(),
        "next_check_at": None,
    }


async def close_action(
    store: Store,
    owner: str,
    action_id: int,
    status: str,
    *,
    error: Exception | None = None,
    execution_link: str | None = None,
    execution_id: str | None = None,
) -> None:
    """Record a known outcome. Code Stream already answered: a failing write is logged and the
    row left open for the reconciler, never raised to the person waiting."""
    changes = _closing(store, status, error, execution_link, execution_id)
    try:
        await retry_write(lambda: store.actions.update_open(action_id, owner, **changes))
    except Exception:
        log.exception(
            "could not record the outcome in the audit trail; the reconciler will settle it",
            extra={"action_id": action_id, "result": status, "execution_id": execution_id},
        )


async def finish_action(
    store: Store,
    owner: str,
    action_id: int,
    status: str,
    *,
    key: str,
    holder: str,
    settle_for: float | None,
    error: Exception | None = None,
    execution_link: str | None = None,
    execution_id: str | None = None,
) -> bool:
    """``close_action`` and, in the same transaction, the end of the intent's claim: settled
    for ``settle_for`` seconds (the dedupe window), or released when None. Code Stream already
    answered: a failing write is logged, never raised; the row stays open and the reconciler
    settles it (returns False then)."""
    changes = _closing(store, status, error, execution_link, execution_id)
    try:
        await retry_write(lambda: store.intents.finish(key, holder, action_id, owner, changes, settle_for=settle_for))
        return True
    except Exception:
        log.exception(
            "could not record the outcome in the audit trail; the reconciler will settle it",
            extra={"action_id": action_id, "result": status, "execution_id": execution_id},
        )
        # The outcome is known all the same: the claim ends on its own (as it would have with the
        # row closed), so that a row the store keeps refusing does not hold retries back.
        try:
            if settle_for is None:
                await retry_write(lambda: store.claims.release(key, holder))
            else:
                await retry_write(lambda: store.claims.settle(key, holder, settle_for))
        except Exception:
            log.warning("could not end the intent's claim either; it lapses on its own", exc_info=True)
        return False


async def about_to_send(store: Store, owner: str, action_id: int) -> None:
    """A claimed intent's row (``claimed``: nothing sent yet) becomes ``pending`` just before its
    one call to Code Stream: from here on a process that dies may have sent it, and the
    reconciler reads back. Raises when it cannot be recorded: then nothing may be sent."""
    if not await retry_write(lambda: store.actions.update_open(action_id, owner, status="pending")):
        raise RuntimeError(f"action {action_id} was settled or taken over before it was sent")


async def give_up_unsent(store: Store, owner: str, action_id: int, *, key: str, holder: str) -> bool:
    """The work on a claimed intent was interrupted, or its process stopped: if nothing was sent
    yet (its row still says ``claimed``: checked and changed in one transaction), the row closes
    as ``not_started`` and the claim is released, so the next request works at once. Once the
    row says the call may have left, nothing is changed. Returns whether it closed the row."""
    changes = _closing(store, "not_started", NotSent(), None, None)
    try:
        return await retry_write(lambda: store.intents.drop_unsent(key, holder, action_id, owner, changes))
    except Exception:
        log.exception("could not drop an unsent intent; the reconciler will", extra={"action_id": action_id})
        return False


async def drop_orphan(store: Store, owner: str, key: str, holder: str) -> bool | None:
    """An intent this process asked to claim and was told failed, though the claim (and its row)
    may have been written: if ``holder`` still holds ``key``, nothing was sent for it, so its row
    closes as ``not_started`` and the claim is released. True when it did; False when the claim
    is not (or no longer) that holder's (nothing to do); None when the store could not say."""
    try:
        claim = await store.claims.get(key)
        if claim is None or claim.holder != holder:
            return False
        action_id = claim.data.get("action_id")
        if not isinstance(action_id, int):
            return False
        changes = _closing(store, "not_started", NotSent(), None, None)
        dropped = await store.intents.drop_never_sent(key, holder, action_id, owner, changes)
    except Exception as exc:  # noqa: BLE001 - tried again later (the reconciler's next round)
        log.warning("could not check an orphaned claim: %s", type(exc).__name__)
        return None
    if dropped:
        log.info("an orphaned claim was released: nothing had been sent", extra={"action_id": action_id})
    return dropped


async def mark_unknown(
    store: Store,
    owner: str,
    action_id: int,
    reconcile_seconds: float,
    *,
    error: Exception | None = None,
    error_class: str | None = None,
) -> datetime:
    """The request may have reached Code Stream: read back until the returned deadline."""
    settle_by = store.now() + timedelta(seconds=reconcile_seconds)
    changes = {
        "status": "unknown",
        "error": user_message(error),
        "error_class": error_class or (type(error).__name__ if error else None),
        "settle_by": settle_by,
    }
    try:
        await retry_write(lambda: store.actions.update_open(action_id, owner, **changes))
    except Exception:
        log.exception("could not record an unknown outcome; it stays pending", extra={"action_id": action_id})
    return settle_by


async def hand_to_reconciler(
    store: Store, owner: str, action_id: int, summary: MessageRef | None, wake: Callable[[], None]
) -> None:
    """An unknown outcome has been shown (``summary``: where, to update in place): from now on
    the reconciler reads it back and settles it."""
    changes: dict[str, Any] = {"next_check_at": store.now()}
    if summary is not None:
        changes |= {"summary_channel": summary.channel, "summary_ts": summary.ts}
    try:
        await retry_write(lambda: store.actions.update_open(action_id, owner, **changes))
    except Exception:
        log.exception("could not hand an unknown outcome to the reconciler", extra={"action_id": action_id})
    wake()


def audit_row(
    *,
    now: datetime,
    kind: str,
    target_id: str,
    action: str,
    actor: Actor,
    surface: str,
    channel_id: str | None,
    request_id: str,
    status: str,
    error: Exception | None,
    owner: str,
    open_seconds: float,
    project: str | None,
    pipeline: str | None,
    **extra: Any,
) -> ActionRecord:
    """An audit row of an action on something other than an event (an execution, an approval:
    ``kind`` says which, ``target_id`` is its id). A pending row carries what the reconciler
    needs: its owner and the deadline ``open_seconds`` from now."""
    pending = status in ("claimed", "pending")  # open: the reconciler must be able to finish it
    return ActionRecord(
        kind=kind,
        event_id=target_id,
        action=action,
        actor_id=actor.user_id,
        actor_name=actor.name,
        surface=surface,
        channel_id=channel_id,
        status=status,
        error=user_message(error),
        error_class=type(error).__name__ if error else None,
        request_id=request_id,
        created_at=now,
        finished_at=None if pending else now,
        owner=owner if pending else None,
        settle_by=now + timedelta(seconds=open_seconds) if pending else None,
        project=project,
        pipeline=pipeline,
        **extra,
    )


async def record_quietly(store: Store, record: ActionRecord) -> int | None:
    """A finished request's audit row (denied, duplicate, failed): logged if it cannot be written."""
    try:
        return await retry_write(lambda: store.actions.record(record))
    except Exception:
        log.exception("could not write the audit row", extra={"result": record.status})
        return None


async def release_quietly(store: Store, key: str, holder: str) -> None:
    """Give an intent back; a failure is logged (the claim then lapses with its window)."""
    try:
        await retry_write(lambda: store.claims.release(key, holder))
    except Exception:
        log.warning("could not release the claim; it lapses with its window", exc_info=True)
