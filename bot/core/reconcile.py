"""The reconciler: every action whose outcome is open is finished by someone, and never by a
second POST.

An action is *open* while its row says ``claimed`` (checked under its claim, nothing sent yet),
``pending`` (the POST is being made, or the process died around it) or ``unknown`` (the request
may have reached Code Stream; no new execution seen yet).
Every replica runs one loop that, every ``interval`` seconds:

1. writes its heartbeat (``bot.core.liveness``), so the others know it is alive;
2. picks the open actions it must look at: its own unknown ones once their answer is shown (the
   Slack layer hands them over with ``Actions.follow_unknown``), any of its own left open too long
   (a write that kept failing), and those of a replica that is gone (SIGKILL, a rollout past its
   grace), which it takes over atomically: of several replicas, one wins;
3. reads each event back: a new execution means it ran (``started``: the summary says so, the
   alert is resolved, the follow-through starts); none by the row's ``settle_by`` deadline
   means it did not (``not_started``: "no run appeared — safe to try again", and only now is
   the intent released); otherwise it checks again later, backing off;
4. purges expired claims (dedupe windows, seen Slack signatures), dead replicas' heartbeats
   and, with a retention set, old audit rows.

Slack is reached only through the ``OutcomeNotifier`` port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.housekeeping import Housekeeping
from bot.core.intents import give_up_unsent, retry_write, row_intent_key
from bot.core.lifecycle import Lifecycle
from bot.core.liveness import Liveness
from bot.core.logs import request_id as request_id_var
from bot.core.readback import EventReadBack, ReadBack
from bot.core.requests import new_request_id
from bot.core.waiting import wait_event
from bot.store import ActionRecord, database_unreachable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileTiming:
    interval: float = 2.0  # seconds between rounds
    heartbeat: float = 5.0  # seconds between heartbeats (their own task: slow rounds do not delay them)
    stale_after: float = 30.0  # a heartbeat older than this: the replica is gone
    # An own action open this long with nobody on it (a write that kept failing): take it. Must
    # exceed the longest a POST may take (Actions.post_budget_seconds).
    stuck_after: float = 600.0
    min_delay: float = 2.0  # between read-backs of one action...
    max_delay: float = 30.0  # ...growing to this
    # Code Stream unreadable this long past the deadline: give up, saying "not confirmed". Until
    # then, "did not start" is decided only from a successful read.
    unreadable_cap: float = 24 * 3600.0
    purge_every: float = 600.0


class Reconciler:
    def __init__(
        self,
        lifecycle: Lifecycle,
        events: EventReadBack,
        others: Mapping[str, ReadBack],
        *,
        retention_days: float = 0.0,
        timing: ReconcileTiming | None = None,
    ) -> None:
        """``events`` reads back reruns and resumes (and rows of kinds this release does not
        know); ``others`` the rest, by the audit row's kind (``execution``, ``approval``)."""
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.owner = lifecycle.owner
        self.events = events
        self.readbacks = others
        self.timing = timing or ReconcileTiming()
        self.liveness = Liveness(self.store, self.owner, stale_after=self.timing.stale_after)
        self.housekeeping = Housekeeping(
            self.store,
            stuck_after=self.timing.stuck_after,
            purge_every=self.timing.purge_every,
            dedupe_seconds=events.dedupe_seconds,
            retention_days=retention_days,
        )
        self.settled = 0  # outcomes this replica settled (tests, metrics)
        self.taken_over = 0
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._run_task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        """The first heartbeat, before this replica takes any work; then the intents a stopped
        process claimed but never sent are freed, so that the first request after a restart is
        not told "already in hand" (the rest waits for the first round)."""
        await retry_write(lambda: self.store.liveness.heartbeat(self.owner))
        try:
            now = self.store.now()
            beats = await self.store.liveness.replica_heartbeats()
            for row in await self.store.actions.open():
                if row.status == "claimed" and row.owner != self.owner and await self._take(row, now, beats):
                    await self._check(row, now)
        except Exception:
            log.exception("could not free the intents a stopped process left; the first round will")

    async def _beat(self) -> None:
        while not self._stopping:
            try:
                await self.store.sync_clock()  # the clocks drift: follow the database's (PostgreSQL)
                await self.store.liveness.heartbeat(self.owner)
            except Exception as exc:  # noqa: BLE001 - logged; the next beat tries again
                log.warning("heartbeat failed", extra={"error_class": type(exc).__name__})
            await wait_event(self._stopped, self.timing.heartbeat)

    async def run(self) -> None:
        self._run_task = asyncio.current_task()
        beat = asyncio.create_task(self._beat(), name="heartbeat")
        try:
            await self._loop()
        finally:
            self._stopped.set()
            await asyncio.gather(beat, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.round()
            except Exception as exc:
                if not database_unreachable(exc):
                    log.exception("reconcile round failed; trying again")
                else:  # one line per round while the database is away, no traceback
                    log.warning("reconcile round skipped: the database is unreachable (%s)", type(exc).__name__)
            if self._stopping:
                break
            await wait_event(self._wake, self.timing.interval)

    async def stop(self) -> None:
        """Stop the loop and say so: what this replica leaves open is taken over at once."""
        self._stopping = True
        self._wake.set()
        self._stopped.set()
        task = self._run_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            # A round in progress is cut short (rounds repeat what they did not finish): the
            # shutdown must fit the pod's termination grace.
            _, pending = await asyncio.wait({task}, timeout=2)
            for left in pending:
                left.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self.store.liveness.forget_replica(self.owner)
        except Exception:
            log.warning("could not remove this replica's heartbeat", exc_info=True)

    async def round(self) -> int:
        """One pass; returns how many open actions it read back."""
        now = self.store.now()
        await self.lifecycle.drop_orphans()  # claims this process was told failed: nothing was sent
        beats = await self.store.liveness.replica_heartbeats()
        checked = 0
        rows = await self.store.actions.open()
        # Known-but-unrecorded rows settled or taken over elsewhere are forgotten here.
        self.lifecycle.unrecorded.intersection_update(row.id for row in rows)
        for row in rows:
            if self._stopping:
                break
            if not await self._take(row, now, beats):
                continue
            checked += 1
            token = request_id_var.set(row.request_id or new_request_id())
            try:
                await self._check(row, now)
                self.lifecycle.unrecorded.discard(row.id)  # read back once: its own schedule from now
            except Exception:
                log.exception("reconciling an action failed; will try again", extra={"action_id": row.id})
            finally:
                request_id_var.reset(token)
        await self.housekeeping.maybe_run(now)
        return checked

    # --- which rows ------------------------------------------------------------------------

    async def _take(self, row: ActionRecord, now: datetime, beats: dict[str, datetime]) -> bool:
        assert row.id is not None
        stuck = now - row.created_at > timedelta(seconds=self.timing.stuck_after)
        if row.owner == self.owner:
            if row.id in self.lifecycle.unrecorded:
                return True  # its outcome is known here but could not be written: read it back now
            if row.status == "unknown" and row.next_check_at is not None:
                return row.next_check_at <= now
            return stuck  # in flight here, or the Slack layer never handed it over
        if row.owner is None:
            gone = stuck  # written by a release without owners: leave it a while
        else:
            gone = await self.liveness.gone(row.owner, beats=beats, missing_is_gone=True)
        if not gone:
            return False
        if not await self.store.actions.take_over(row.id, row.owner, self.owner):
            return False  # another replica took it first, or it was settled meanwhile
        self.taken_over += 1
        log.warning(
            "taking over an action a stopped replica left open",
            extra={"action_id": row.id, "holder": row.owner, "result": row.status},
        )
        return True

    # --- one action ------------------------------------------------------------------------

    async def _check(self, row: ActionRecord, now: datetime) -> None:
        assert row.id is not None
        if row.status == "claimed":
            # Its process stopped while checking, before anything was sent: nothing ran, and the
            # intent is free at once (not after the claim's window).
            key, holder = row_intent_key(row), row.request_id or ""
            if await give_up_unsent(self.store, self.owner, row.id, key=key, holder=holder):
                log.info("closed an intent its stopped process had claimed but not sent", extra={"action_id": row.id})
            return  # else it moved on meanwhile (sent, or settled): the next round reads it anew
        readback: ReadBack = self.readbacks.get(row.kind, self.events)
        verdict, thing = await readback.read(row, now)
        deadline = row.settle_by or now
        if verdict == "unreadable" and now >= deadline + timedelta(seconds=self.timing.unreadable_cap):
            verdict = "unconfirmed"  # Code Stream unreadable too long: say "not confirmed"
        if verdict in ("later", "unreadable"):
            await self._reschedule(row, now)
            return
        status = verdict if verdict in ("done", "not_started") else "unknown"
        self.settled += await readback.settle(row, status, thing, now, verdict)

    async def _reschedule(self, row: ActionRecord, now: datetime) -> None:
        assert row.id is not None
        age = (now - row.created_at).total_seconds()
        delay = min(self.timing.max_delay, max(self.timing.min_delay, age / 5))
        # A pending row reached here only after its replica died: the POST may have left.
        await self.store.actions.update_open(
            row.id, self.owner, status="unknown", next_check_at=now + timedelta(seconds=delay)
        )
