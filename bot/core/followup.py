"""The follow-through: after a resume/rerun, follow the new execution to its end and keep the
summary (and, at the end, the original alert) up to date in Slack.

* ``track()`` stores a tracker (a row in the ``followups`` table) and returns at once: trackers
  live in the store, so a restarted bot, or another replica, carries on with them.
* ONE loop (``run()``) serves every tracker. Each round it reads the trackers that are due
  (earliest first) and polls ``GET /codestream/api/executions/{id}`` for as many as the global
  poll budget allows (a token bucket: ``bot_follow_poll_budget`` reads per second across all
  trackers), at most ``concurrency`` at a time. 500 trackers are 500 rows, not 500 tasks; when
  they need more reads than the budget allows, each is simply polled less often.
* Per tracker: backoff from ``initial_interval`` (×``backoff`` per unchanged or failed poll,
  capped at ``max_interval``), back to the start on a status change.
* The summary is re-rendered (``chat.update``) only when the status changes; at a terminal status
  the alert is resolved too ("✅ Fixed by rerun #7 by @alice" / "❌ Rerun #7 ... failed again")
  and the tracker is finished. After ``bot_follow_max_hours`` it gives up and says so.
* Replicas: the loop only polls while it holds the store lease ``followups`` (ttl
  ``lease_ttl``, renewed every ``lease_ttl / 3``, re-checked before every Slack write). One
  replica polls at a time, so the budget is global and every status change is shown once; when
  the holder dies, another replica takes over once the lease expires (``stop()`` releases it, so
  a clean restart or rollout hands over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound, RateLimited
from bot.codestream.models import EVENT_KINDS, Event, EventKind, Execution
from bot.core import metrics
from bot.core.followup_timing import FollowupTiming, PollBudget
from bot.core.perform import retry_write
from bot.core.requests import ActionRequest, Actor, Outcome, Surface, Verb, new_request_id
from bot.slack.delivery import Delivery
from bot.slack.render import text as t
from bot.slack.render.base import MAX_BLOCKS, fallback_text, section
from bot.slack.render.messages import SlackMessage, render_alert_resolved, render_followup
from bot.store import ActionRecord, FollowupRecord, Store
from bot.store.store import HolderGone

if TYPE_CHECKING:
    from bot.app.runtime import Runtime
    from bot.slack.surfaces import AlertRef

__all__ = [
    "LEASE_NAME",
    "FollowupStats",
    "FollowupTiming",
    "FollowupTracker",
    "MessageUpdater",
    "PollBudget",
]

log = logging.getLogger(__name__)

LEASE_NAME: Final = "followups"
NOT_FOUND_STATUS: Final = "NOT_FOUND"  # stored when Code Stream no longer has the execution
UNKNOWN_STATUS: Final = "UNKNOWN"  # stored when the summary showed no status yet
_VERBS: Final[dict[str, Verb]] = {"rerun": "rerun", "resume": "resume"}
_SURFACES: Final[dict[str, Surface]] = {
    "slash": "slash",
    "button": "button",
    "thread": "thread",
    "mention": "mention",
    "cli": "cli",
}
_KINDS: Final[dict[str, EventKind]] = {k: k for k in EVENT_KINDS}
_OUTCOME_CACHE: Final = 2000  # outcomes kept in memory (re-read from the store after that)

Clock = Callable[[], datetime]


class MessageUpdater(Protocol):
    """What the tracker needs from Slack: ``bot.slack.delivery.Delivery`` (never raises)."""

    async def update(self, channel: str, ts: str, message: SlackMessage) -> bool: ...


@dataclass
class FollowupStats:
    """Counters since start (for logs, metrics and the benchmark)."""

    polls: int = 0  # execution reads
    event_reads: int = 0  # event reads to re-render after a restart
    poll_errors: int = 0
    changes: int = 0  # status changes seen (terminal ones included)
    summary_updates: int = 0
    alert_updates: int = 0
    slack_failures: int = 0
    finished: int = 0
    gave_up: int = 0
    not_found: int = 0
    lag_seconds: float = 0.0  # how late the most overdue tracker was at the last round


class _NotLeader(Exception):
    """The lease moved to another replica: leave the tracker to it."""


def _new_execution_id(outcome: Outcome) -> str | None:
    """The execution the action started. ``perform`` sets ``execution_url`` only from the event
    read after the action, so without it ``outcome.event`` may still name the old execution."""
    if outcome.execution is not None and outcome.execution.id:
        return outcome.execution.id
    if outcome.execution_url and outcome.event is not None:
        return outcome.event.execution_id
    return None


def _shown_status(outcome: Outcome) -> str:
    """The status the posted summary shows (what ``render_outcome`` put there)."""
    status = outcome.execution.status if outcome.execution is not None else None
    if not status and outcome.event is not None:
        status = outcome.event.execution_status
    return (status or UNKNOWN_STATUS).strip().upper() or UNKNOWN_STATUS


def _last_known(record: FollowupRecord) -> Execution:
    """An Execution standing for the last status seen, when Code Stream cannot be read."""
    status = None if record.status in (UNKNOWN_STATUS, NOT_FOUND_STATUS) else record.status
    return Execution.model_validate({"id": record.execution_id, "status": status})


def _with_note(message: SlackMessage, mrkdwn: str, plain: str) -> SlackMessage:
    """The message with one more section before its closing context line."""
    blocks = list(message.blocks)
    blocks.insert(max(0, len(blocks) - 1), section(mrkdwn))
    return replace(message, text=fallback_text(message.text, plain), blocks=blocks[:MAX_BLOCKS])


class FollowupTracker:
    """Follows executions started from Slack. One per process; see the module docstring.

    Use: ``await tracker.track(...)`` from the Slack layer; ``task = create_task(tracker.run())``
    at start-up; ``await tracker.stop()`` at shutdown (before the store closes).
    """

    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        delivery: MessageUpdater,
        *,
        execution_url: Callable[[str], str],
        max_hours: float = 6.0,
        poll_budget: float = 2.0,
        holder: str = "codestream-bot",
        timing: FollowupTiming | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        holder_gone: HolderGone | None = None,
    ) -> None:
        if max_hours <= 0:
            raise ValueError("max_hours must be positive")
        self.store = store
        self.client = client
        self.delivery = delivery
        self.execution_url = execution_url
        self.max_age = timedelta(hours=max_hours)
        self.timing = timing or FollowupTiming()
        self.budget = PollBudget(poll_budget)
        self.holder = holder
        self.holder_gone = holder_gone  # a dead holder's lease is taken over at once
        self.stats = FollowupStats()
        self._clock: Clock = clock or store.now
        self._rng = rng or random.Random()
        self._outcomes: OrderedDict[int, Outcome] = OrderedDict()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._dispatching = asyncio.Lock()
        self._stopping = False
        self._run_task: asyncio.Task[None] | None = None
        # Lease bookkeeping on the monotonic clock (the lease itself lives in the store).
        self._leader_until = 0.0
        self._next_renewal = 0.0
        self._next_attempt = 0.0
        self._saturated = False
        self._lag_logged_at = 0.0

    @classmethod
    def from_runtime(
        cls,
        runtime: Runtime,
        delivery: MessageUpdater | None = None,
        *,
        timing: FollowupTiming | None = None,
        clock: Clock | None = None,
    ) -> FollowupTracker:
        """The tracker for a running bot, from its Settings (BOT_FOLLOW_*); it updates Slack
        through ``runtime.web`` unless given another ``delivery``."""
        settings = runtime.settings
        if delivery is None:
            if runtime.web is None:
                raise ValueError("following executions needs Slack (SLACK_BOT_TOKEN)")
            delivery = Delivery(runtime.web)
        return cls(
            runtime.store,
            runtime.client,
            delivery,
            execution_url=settings.execution_ui_url,
            max_hours=settings.bot_follow_max_hours,
            poll_budget=settings.bot_follow_poll_budget,
            holder=runtime.replica,
            timing=timing,
            clock=clock,
            holder_gone=runtime.lease_holder_gone,
        )

    @property
    def is_leader(self) -> bool:
        """Whether this replica held the ``followups`` lease at its last check."""
        return self._leader_until > time.monotonic()

    # --- tracking ----------------------------------------------------------------------------

    async def track(self, outcome: Outcome, *, channel: str, summary_ts: str, alert: AlertRef | None) -> int | None:
        """Follow the execution a started action created; returns the tracker's id, or None when
        the outcome names no new execution (nothing to follow). The summary ``summary_ts`` in
        ``channel`` is updated as the execution progresses; ``alert`` is resolved at the end."""
        execution_id = _new_execution_id(outcome)
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
            status=_shown_status(outcome),
            next_poll_at=now + timedelta(seconds=self.timing.first_poll),
            deadline_at=now + self.max_age,
            interval=self.timing.initial_interval,
            created_at=now,
        )
        fid = await retry_write(lambda: self.store.add_followup(record))  # Code Stream already acted
        self._remember(fid, outcome)
        self._wake.set()
        log.info(
            "following execution",
            extra={"followup_id": fid, "execution_id": execution_id, "event_id": request.event_id},
        )
        return fid

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
                except Exception:
                    log.exception("follow-through round failed; trying again")
                if self._stopping:
                    break
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=delay)
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
        self._leader_until = 0.0
        try:
            await self.store.release_lease(LEASE_NAME, self.holder)
        except Exception as exc:
            log.warning(
                "could not release the follow-up lease", exc_info=True, extra={"error_class": type(exc).__name__}
            )

    # --- rounds ----------------------------------------------------------------------------

    async def _dispatch(self, now: datetime, clock: Clock) -> list[asyncio.Task[None]]:
        async with self._dispatching:  # run() and poll_once() must not pick the same trackers
            return await self._dispatch_locked(now, clock)

    async def _dispatch_locked(self, now: datetime, clock: Clock) -> list[asyncio.Task[None]]:
        self._saturated = False
        if self._stopping or not await self._lead():
            return []
        stamp = now.timestamp()
        free = self.timing.concurrency - len(self._inflight)
        limit = min(self.budget.available(stamp), free, self.timing.max_batch)
        if limit <= 0:
            return []
        # Skip trackers in flight when the query started, not only those in flight now: one that
        # finished meanwhile was read before its final write and must not be polled again.
        busy = set(self._inflight)
        due = await self.store.due_followups(now, limit=limit + len(busy))
        busy |= set(self._inflight)
        fresh = [r for r in due if r.id is not None and r.id not in busy][:limit]
        self._note_lag(now, fresh)
        self._saturated = len(fresh) == limit
        tasks: list[asyncio.Task[None]] = []
        for record in fresh:
            assert record.id is not None
            self.budget.take(stamp)
            task = asyncio.create_task(self._process(record, clock), name=f"followup-{record.id}")
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
            return max(0.01, min(self._next_attempt - time.monotonic(), self.timing.lease_ttl))
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
        lag = t.seconds_between(now, records[0].next_poll_at)
        self.stats.lag_seconds = max(0.0, lag)
        mono = time.monotonic()
        if lag > 2 * self.timing.max_interval and mono - self._lag_logged_at > 60:
            self._lag_logged_at = mono
            log.warning(
                "follow-ups are polled late: the poll budget is too small for the trackers",
                extra={"lag_seconds": round(lag), "poll_budget": self.budget.rate},
            )

    # --- leadership ------------------------------------------------------------------------

    async def _lead(self) -> bool:
        """Hold the ``followups`` lease: take it when free, renew it every ttl/3."""
        mono = time.monotonic()
        leader = self._leader_until > mono
        if leader and mono < self._next_renewal:
            return True
        if not leader and mono < self._next_attempt:
            return False
        ttl = self.timing.lease_ttl
        try:
            held = await self.store.acquire_lease(LEASE_NAME, self.holder, ttl, holder_gone=self.holder_gone)
        except Exception as exc:
            # The store is unreachable: keep going only while our lease surely still holds.
            log.warning("follow-up lease check failed", exc_info=True, extra={"error_class": type(exc).__name__})
            self._next_attempt = mono + min(ttl / 3, self.timing.idle * 5)
            self._next_renewal = self._next_attempt
            return leader
        await self._report_active()
        if held:
            if not leader:
                log.info("following executions on this replica", extra={"holder": self.holder})
            self._leader_until = mono + ttl * 0.9  # a margin for the time the call took
            self._next_renewal = mono + ttl / 3
        else:
            if leader:
                log.warning("another replica took over the follow-ups", extra={"holder": self.holder})
            self._leader_until = 0.0
            self._next_attempt = mono + ttl / 3
        return held

    async def _report_active(self) -> None:
        """The active-trackers gauge, refreshed with each lease check (every lease_ttl / 3)."""
        try:
            metrics.ACTIVE_TRACKERS.set(await self.store.active_followups_count())
        except Exception:
            log.debug("could not count active follow-ups", exc_info=True)

    async def _fence(self) -> None:
        """Before a Slack write: make sure no other replica has taken over meanwhile."""
        if not await self.store.renew_lease(LEASE_NAME, self.holder, self.timing.lease_ttl):
            self._leader_until = 0.0
            self._next_attempt = time.monotonic() + self.timing.lease_ttl / 3
            raise _NotLeader
        mono = time.monotonic()
        self._leader_until = mono + self.timing.lease_ttl * 0.9
        self._next_renewal = mono + self.timing.lease_ttl / 3

    # --- one tracker -----------------------------------------------------------------------

    async def _process(self, record: FollowupRecord, clock: Clock) -> None:
        assert record.id is not None
        try:
            await self._follow(record, clock)
        except _NotLeader:
            log.info("follow-up left to the replica holding the lease", extra={"followup_id": record.id})
        except Exception as exc:
            log.exception(
                "following an execution failed; will try again",
                extra={"followup_id": record.id, "execution_id": record.execution_id},
            )
            try:
                await self._reschedule(record, clock(), changed=False, error=exc)
            except Exception:
                log.warning("could not reschedule the follow-up", exc_info=True, extra={"followup_id": record.id})

    async def _follow(self, record: FollowupRecord, clock: Clock) -> None:
        assert record.id is not None
        self.stats.polls += 1
        try:
            execution = await self.client.get_execution(record.execution_id, retry=False)
        except (NotFound, InvalidId) as exc:
            await self._missing(record, clock(), exc)
            return
        except CodeStreamError as exc:
            self.stats.poll_errors += 1
            now = clock()
            log.info(
                "execution read failed; backing off",
                extra={
                    "followup_id": record.id,
                    "execution_id": record.execution_id,
                    "error_class": type(exc).__name__,
                },
            )
            if now >= record.deadline_at:
                await self._give_up(record, _last_known(record), now)
            else:
                await self._reschedule(record, now, changed=False, error=exc)
            return
        now = clock()
        status = (execution.status or "").strip().upper() or record.status
        if execution.is_terminal:
            await self._finish(record, execution, status, now)
            return
        if now >= record.deadline_at:
            await self._give_up(record, execution, now)
            return
        changed = status != record.status
        if changed:
            self.stats.changes += 1
            outcome = await self._outcome(record, now, final=False)
            if outcome is None:  # the event could not be read: show the change at the next poll
                await self._reschedule(record, now, changed=False, error=None)
                return
            await self._fence()
            await self._update_summary(record, render_followup(outcome, execution=execution, now=now))
        # An unchanged status is not written: a replica that lost the lease mid-poll then cannot
        # overwrite a newer status recorded by the new holder.
        await self._reschedule(record, now, changed=changed, status=status if changed else None)

    async def _finish(self, record: FollowupRecord, execution: Execution, status: str, now: datetime) -> None:
        assert record.id is not None
        outcome = await self._outcome(record, now, final=False)
        if outcome is None:
            await self._reschedule(record, now, changed=False, error=None)
            return
        self.stats.changes += status != record.status
        await self._fence()
        await self._update_summary(record, render_followup(outcome, execution=execution, now=now))
        if record.alert_channel_id and record.alert_ts and outcome.event is not None:
            index = execution.index if execution.index is not None else outcome.event.execution_index
            message = render_alert_resolved(
                outcome.event,
                verb=outcome.request.verb,
                actor_id=outcome.request.actor.user_id,
                outcome_status="started",
                execution_url=outcome.execution_url,
                execution_index=index,
                final_status=status,
                now=now,
            )
            if await self.delivery.update(record.alert_channel_id, record.alert_ts, message):
                self.stats.alert_updates += 1
            else:
                self.stats.slack_failures += 1
        await self.store.update_followup(record.id, status=status, finished_at=now)
        self._forget(record.id)
        self.stats.finished += 1
        log.info(
            "execution finished",
            extra={"followup_id": record.id, "execution_id": record.execution_id, "status": status},
        )

    async def _give_up(self, record: FollowupRecord, execution: Execution, now: datetime) -> None:
        assert record.id is not None
        outcome = await self._outcome(record, now, final=True)
        assert outcome is not None
        await self._fence()
        await self._update_summary(record, render_followup(outcome, execution=execution, now=now, gave_up=True))
        status = (execution.status or "").strip().upper() or record.status
        await self.store.update_followup(record.id, status=status, finished_at=now)
        self._forget(record.id)
        self.stats.finished += 1
        self.stats.gave_up += 1
        log.info(
            "gave up following an execution",
            extra={"followup_id": record.id, "execution_id": record.execution_id, "status": status},
        )

    async def _missing(self, record: FollowupRecord, now: datetime, error: CodeStreamError) -> None:
        assert record.id is not None
        outcome = await self._outcome(record, now, final=True)
        assert outcome is not None
        await self._fence()
        message = render_followup(outcome, execution=_last_known(record), now=now)
        message = _with_note(
            message,
            "🔍 *Stopped following:* Code Stream no longer has this execution (deleted, or its id is wrong); "
            "check the pipeline's executions in Code Stream.",
            "stopped following: Code Stream no longer has this execution",
        )
        await self._update_summary(record, message)
        await self.store.update_followup(record.id, status=NOT_FOUND_STATUS, finished_at=now)
        self._forget(record.id)
        self.stats.finished += 1
        self.stats.not_found += 1
        log.warning(
            "execution not found; stopped following it",
            extra={"followup_id": record.id, "execution_id": record.execution_id, "error_class": type(error).__name__},
        )

    async def _update_summary(self, record: FollowupRecord, message: SlackMessage) -> None:
        """Slack failures are logged by Delivery; the status is recorded regardless, so the next
        change renders the whole summary again."""
        if await self.delivery.update(record.channel_id, record.summary_ts, message):
            self.stats.summary_updates += 1
        else:
            self.stats.slack_failures += 1
            log.warning(
                "summary update failed; the next status change re-renders it",
                extra={"followup_id": record.id, "channel_id": record.channel_id},
            )

    async def _reschedule(
        self,
        record: FollowupRecord,
        now: datetime,
        *,
        changed: bool,
        status: str | None = None,
        error: Exception | None = None,
    ) -> None:
        assert record.id is not None
        timing = self.timing
        if changed:
            interval = timing.initial_interval
        else:
            interval = min(timing.max_interval, max(timing.initial_interval, record.interval * timing.backoff))
        delay = interval * (1 + self._rng.uniform(-timing.jitter, timing.jitter)) if timing.jitter else interval
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, timing.max_interval * 5))
        changes: dict[str, object] = {"interval": interval, "next_poll_at": now + timedelta(seconds=delay)}
        if status is not None:
            changes["status"] = status
        await self.store.update_followup(record.id, **changes)

    # --- what to render ----------------------------------------------------------------------

    def _remember(self, fid: int, outcome: Outcome) -> None:
        self._outcomes[fid] = outcome
        self._outcomes.move_to_end(fid)
        while len(self._outcomes) > _OUTCOME_CACHE:
            self._outcomes.popitem(last=False)

    def _forget(self, fid: int) -> None:
        self._outcomes.pop(fid, None)

    async def _outcome(self, record: FollowupRecord, now: datetime, *, final: bool) -> Outcome | None:
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
            action = await self.store.get_action(record.action_id)
        kind = _KINDS.get(record.kind)
        event: Event | None = None
        if kind is not None:
            self.budget.take(now.timestamp())
            self.stats.event_reads += 1
            try:
                event = await self.client.get_event(kind, record.event_id)
            except (NotFound, InvalidId):
                event = None
            except CodeStreamError as exc:
                log.info("event read failed", extra={"followup_id": record.id, "error_class": type(exc).__name__})
                if not final:
                    return None
        outcome = self._rebuild(record, action, kind or "git", event)
        self._remember(record.id, outcome)
        return outcome

    def _rebuild(
        self, record: FollowupRecord, action: ActionRecord | None, kind: EventKind, event: Event | None
    ) -> Outcome:
        if action is None:
            log.info("no action row for a follow-up; assuming a rerun", extra={"followup_id": record.id})
        request = ActionRequest(
            verb=_VERBS.get(action.action, "rerun") if action else "rerun",
            kind=kind,
            event_id=record.event_id,
            actor=Actor(
                action.actor_id if action else (record.actor_id or "someone"), action.actor_name if action else None
            ),
            surface=_SURFACES.get(action.surface, "button") if action else "button",
            channel_id=action.channel_id if action else record.channel_id,
            request_id=(action.request_id if action else None) or new_request_id(),
        )
        return Outcome(
            request,
            "started",
            event=event,
            execution_url=self.execution_url(record.execution_id),
            action_id=record.action_id,
            at=action.created_at if action else record.created_at,
        )
