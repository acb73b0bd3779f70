"""The follow-through: after a resume/rerun, follow the new execution to its end and keep the
summary (and, at the end, the original alert) up to date in Slack.

* ``track()`` stores a tracker (a row in the ``followups`` table) and returns at once: trackers
  live in the store, so a restarted bot, or another replica, carries on with them.
* ONE loop (``run()``) serves every tracker. Each round it reads the trackers that are due
  (earliest first) and polls ``GET /codestream/api/executions/{id}`` for as many as the global
  poll budget allows (a token bucket: ``timing.poll_budget`` reads per second across all
  trackers, BOT_FOLLOW_POLL_BUDGET), at most ``concurrency`` at a time. 500 trackers are 500
  rows, not 500 tasks; when they need more reads than the budget allows, each is simply polled
  less often.
* Per tracker: backoff from ``initial_interval`` (×``backoff`` per unchanged or failed poll,
  capped at ``max_interval``), back to the start on a status change.
* The summary is re-rendered (``chat.update``) only when the status changes; at a terminal status
  the alert is resolved too ("✅ Fixed by rerun #7 by @alice" / "❌ Rerun #7 ... failed again")
  and the tracker is finished. After ``timing.max_hours`` (BOT_FOLLOW_MAX_HOURS) it gives up and
  says so.
* Slack is reached only through the ``FollowThroughView`` port (``bot.core.ports``).
* Replicas (``leadership``): the loop only polls while it holds the store lease ``followups`` (ttl
  ``lease_ttl``, renewed every ``lease_ttl / 3``, re-checked before every Slack write). One
  replica polls at a time, so the budget is global and every status change is shown once; when
  the holder dies, another replica takes over once the lease expires (``stop()`` releases it, so
  a clean restart or rollout hands over at once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.core.followup.leadership import Leadership
from bot.core.followup.polling import PollStep
from bot.core.followup.progress import (
    UNKNOWN_STATUS,
    OutcomeMemory,
    new_execution_id,
    shown_status,
)
from bot.core.followup.stats import FollowupStats
from bot.core.followup.timing import FollowupTiming, PollBudget
from bot.core.intents import retry_write
from bot.core.leases import LeaseHolder
from bot.core.ports import FollowThroughView
from bot.core.requests import MessageRef, Outcome
from bot.core.time import seconds_between
from bot.core.waiting import wait_event
from bot.store import FollowupRecord, Store, database_unreachable

log = logging.getLogger("bot.core.followup")

Clock = Callable[[], datetime]

#: The lease holder of a tracker given none (tests, tools); a running bot names its replica.
DEFAULT_HOLDER: Final = LeaseHolder("codestream-bot")


class FollowupTracker:
    """Follows executions started from Slack. One per process; see the module docstring.

    Use: ``await tracker.track(...)`` from the Slack layer; ``task = create_task(tracker.run())``
    at start-up; ``await tracker.stop()`` at shutdown (before the store closes).
    """

    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        view: FollowThroughView,
        *,
        execution_url: Callable[[str], str],
        timing: FollowupTiming | None = None,
        lease: LeaseHolder = DEFAULT_HOLDER,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.view = view
        self.execution_url = execution_url
        self.timing = timing or FollowupTiming()
        self.max_age = timedelta(hours=self.timing.max_hours)
        self.budget = PollBudget(self.timing.poll_budget)
        self.holder = lease.name
        self.stats = FollowupStats()
        self.leadership = Leadership(store, lease.name, self.timing, lease.gone)
        self.memory = OutcomeMemory(
            store, client, self.budget, execution_url=execution_url, on_event_read=self._count_event_read
        )
        self._clock: Clock = clock or store.now
        self.step = PollStep(
            store, client, view, self.memory, self.leadership, self.stats, self.timing, rng or random.Random()
        )
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._dispatching = asyncio.Lock()
        self._stopping = False
        self._run_task: asyncio.Task[None] | None = None
        self._saturated = False
        self._lag_logged_at = 0.0

    def _count_event_read(self) -> None:
        self.stats.event_reads += 1

    @property
    def is_leader(self) -> bool:
        """Whether this replica held the ``followups`` lease at its last check."""
        return self.leadership.is_leader

    # --- tracking ----------------------------------------------------------------------------

    async def track(self, outcome: Outcome, *, channel: str, summary_ts: str, alert: MessageRef | None) -> int | None:
        """Follow the execution a started action created; returns the tracker's id, or None when
        the outcome names no new execution (nothing to follow). The summary ``summary_ts`` in
        ``channel`` is updated as the execution progresses; ``alert`` is resolved at the end."""
        execution_id = new_execution_id(outcome)
        if outcome.status != "started" or execution_id is None:
            log.warning(
                "nothing to follow",
                extra={"action_id": outcome.action_id, "result": outcome.status, "event_id": outcome.request.event_id},
            )
            return None
        now = self._clock()
        request = outcome.request
        record = FollowupRecord(
            execution_id=execution_id,
            kind=request.kind,
            event_id=request.event_id,
            action_id=outcome.action_id,
            channel_id=channel,
            summary_ts=summary_ts,
            alert_channel_id=alert.channel if alert is not None else None,
            alert_ts=alert.ts if alert is not None else None,
            actor_id=request.actor.user_id,
            status=shown_status(outcome),
            next_poll_at=now + timedelta(seconds=self.timing.first_poll),
            deadline_at=now + self.max_age,
            interval=self.timing.initial_interval,
            created_at=now,
        )
        fid = await retry_write(lambda: self.store.followups.add(record))  # Code Stream already acted
        self.memory.remember(fid, outcome)
        self._wake.set()
        log.info(
            "following execution",
            extra={"followup_id": fid, "execution_id": execution_id, "event_id": request.event_id},
        )
        return fid

    async def track_execution(
        self,
        execution_id: str,
        *,
        kind: str,
        target_id: str,
        action_id: int | None,
        summary: MessageRef,
        actor_id: str,
        status: str | None,
    ) -> int:
        """Follow an execution an action created that is not an event's (a pipeline run:
        ``kind`` and ``target_id`` as its audit row says); the summary is updated in place."""
        now = self._clock()
        record = FollowupRecord(
            execution_id=execution_id,
            kind=kind,
            event_id=target_id,
            action_id=action_id,
            channel_id=summary.channel,
            summary_ts=summary.ts,
            actor_id=actor_id,
            status=(status or UNKNOWN_STATUS).strip().upper() or UNKNOWN_STATUS,
            next_poll_at=now + timedelta(seconds=self.timing.first_poll),
            deadline_at=now + self.max_age,
            interval=self.timing.initial_interval,
            created_at=now,
        )
        fid = await retry_write(lambda: self.store.followups.add(record))  # Code Stream already acted
        self._wake.set()
        log.info("following execution", extra={"followup_id": fid, "execution_id": execution_id, "kind": kind})
        return fid

    async def acted(self, execution_id: str, *, verb: str, actor_id: str, at: datetime) -> bool:
        """Someone canceled, paused or resumed a followed execution from Slack: its summary
        says who at the next poll, which is now (the recorded status is reset, so the summary
        is re-rendered whatever the new status). Returns whether the bot follows it."""
        record = await self.store.followups.open_for_execution(execution_id)
        if record is None or record.id is None:
            return False
        fid = record.id
        await retry_write(
            lambda: self.store.followups.update(
                fid,
                control_verb=verb,
                control_by=actor_id,
                control_at=at,
                status=UNKNOWN_STATUS,
                next_poll_at=self._clock(),
                interval=self.timing.initial_interval,
            )
        )
        self._wake.set()
        return True

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll due trackers until ``stop()`` (or cancellation). Never raises otherwise."""
        self._run_task = asyncio.current_task()
        log.info("follow-through started", extra={"holder": self.holder, "poll_budget": self.budget.rate})
        try:
            while not self._stopping:
                self._wake.clear()
                delay = self.timing.idle
                try:
                    now = self._clock()
                    await self._dispatch(now, self._clock)
                    delay = self._next_delay(now)
                except Exception as exc:
                    if not database_unreachable(exc):
                        log.exception("follow-through round failed; trying again")
                    else:  # one line per round while the database is away, no traceback
                        log.warning(
                            "follow-through round skipped: the database is unreachable (%s)", type(exc).__name__
                        )
                if self._stopping:
                    break
                if delay > 0:
                    await wait_event(self._wake, delay)
                else:
                    await asyncio.sleep(0)
        finally:
            if not self._stopping:  # cancelled without stop(): abandon the polls in flight
                for task in list(self._inflight.values()):
                    task.cancel()
            log.info("follow-through stopped", extra={"holder": self.holder})

    async def poll_once(self, now: datetime | None = None) -> int:
        """One round at ``now`` (tests, tools): start the polls the lease, the budget and the
        concurrency allow, wait for them, and return how many trackers were polled."""
        when = self._clock() if now is None else now
        tasks = await self._dispatch(when, lambda: when)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    async def stop(self) -> None:
        """Stop the loop, let polls in flight finish (``stop_grace``), release the lease. The
        trackers themselves are already in the store; whoever holds the lease next resumes them."""
        self._stopping = True
        self._wake.set()
        grace = self.timing.stop_grace
        run_task = self._run_task
        if run_task is not None and not run_task.done() and run_task is not asyncio.current_task():
            _, pending = await asyncio.wait({run_task}, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(run_task, return_exceptions=True)
        inflight = list(self._inflight.values())
        if inflight:
            _, pending = await asyncio.wait(inflight, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
        await self.leadership.release()

    # --- rounds ----------------------------------------------------------------------------

    async def _dispatch(self, now: datetime, clock: Clock) -> list[asyncio.Task[None]]:
        async with self._dispatching:  # run() and poll_once() must not pick the same trackers
            return await self._dispatch_locked(now, clock)

    async def _dispatch_locked(self, now: datetime, clock: Clock) -> list[asyncio.Task[None]]:
        self._saturated = False
        if self._stopping or not await self.leadership.lead():
            return []
        stamp = now.timestamp()
        free = self.timing.concurrency - len(self._inflight)
        limit = min(self.budget.available(stamp), free, self.timing.max_batch)
        if limit <= 0:
            return []
        # Skip trackers in flight when the query started, not only those in flight now: one that
        # finished meanwhile was read before its final write and must not be polled again.
        busy = set(self._inflight)
        due = await self.store.followups.due(now, limit=limit + len(busy))
        busy |= set(self._inflight)
        fresh = [r for r in due if r.id is not None and r.id not in busy][:limit]
        self._note_lag(now, fresh)
        self._saturated = len(fresh) == limit
        tasks: list[asyncio.Task[None]] = []
        for record in fresh:
            assert record.id is not None
            self.budget.take(stamp)
            task = asyncio.create_task(self.step.process(record, clock), name=f"followup-{record.id}")
            self._inflight[record.id] = task
            task.add_done_callback(self._done(record.id))
            tasks.append(task)
        return tasks

    def _done(self, fid: int) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            if self._inflight.get(fid) is task:
                del self._inflight[fid]
            if not task.cancelled() and task.exception() is not None:  # _process catches; belt and braces
                log.error("follow-up task failed", exc_info=task.exception(), extra={"followup_id": fid})
            self._wake.set()

        return done

    def _next_delay(self, now: datetime) -> float:
        if not self.is_leader:
            return self.leadership.retry_delay()
        wait = self.budget.wait_time(now.timestamp())
        if wait > 0:
            return min(wait, self.timing.idle) if not self._saturated else wait
        if self._saturated and len(self._inflight) < self.timing.concurrency:
            return 0.0  # more may be due and the budget allows: go again
        return self.timing.idle  # a poll finishing or a new tracker wakes the loop sooner

    def _note_lag(self, now: datetime, records: list[FollowupRecord]) -> None:
        if not records:
            self.stats.lag_seconds = 0.0
            return
        lag = seconds_between(now, records[0].next_poll_at)
        self.stats.lag_seconds = max(0.0, lag)
        mono = time.monotonic()
        if lag > 2 * self.timing.max_interval and mono - self._lag_logged_at > 60:
            self._lag_logged_at = mono
            log.warning(
                "follow-ups are polled late: the poll budget is too small for the trackers",
                extra={"lag_seconds": round(lag), "poll_budget": self.budget.rate},
            )
