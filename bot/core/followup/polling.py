"""One poll of one tracker: read the execution, show a change, and close the tracker when the
execution ended, the tracker gave up or the execution is gone (one close path for all three)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound, RateLimited
from bot.codestream.models import Execution
from bot.core.followup.leadership import Leadership, NotLeader
from bot.core.followup.progress import NOT_FOUND_STATUS, OutcomeMemory, last_known
from bot.core.followup.stats import FollowupStats
from bot.core.followup.timing import FollowupTiming
from bot.core.ports import Ending, FollowThroughView
from bot.core.requests import Outcome
from bot.store import FollowupRecord, Store

log = logging.getLogger("bot.core.followup")

Clock = Callable[[], datetime]


class PollStep:
    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        view: FollowThroughView,
        memory: OutcomeMemory,
        leadership: Leadership,
        stats: FollowupStats,
        timing: FollowupTiming,
        rng: random.Random,
    ) -> None:
        self.store = store
        self.client = client
        self.view = view
        self.memory = memory
        self.leadership = leadership
        self.stats = stats
        self.timing = timing
        self._rng = rng

    async def process(self, record: FollowupRecord, clock: Clock) -> None:
        assert record.id is not None
        try:
            await self._follow(record, clock)
        except NotLeader:
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
            await self._close(record, last_known(record), clock(), ending="missing", error=exc)
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
                await self._close(record, last_known(record), now, ending="gave_up")
            else:
                await self._reschedule(record, now, changed=False, error=exc)
            return
        now = clock()
        status = (execution.status or "").strip().upper() or record.status
        if execution.is_terminal:
            await self._close(record, execution, now, ending="finished")
            return
        if now >= record.deadline_at:
            await self._close(record, execution, now, ending="gave_up")
            return
        changed = status != record.status
        if changed:
            self.stats.changes += 1
            outcome = await self.memory.outcome(record, now, final=False)
            if outcome is None:  # the event could not be read: show the change at the next poll
                await self._reschedule(record, now, changed=False, error=None)
                return
            await self.leadership.fence()
            await self._show(record, outcome, execution, "running", now)
        # An unchanged status is not written: a replica that lost the lease mid-poll then cannot
        # overwrite a newer status recorded by the new holder.
        await self._reschedule(record, now, changed=changed, status=status if changed else None)

    async def _close(
        self,
        record: FollowupRecord,
        execution: Execution,
        now: datetime,
        *,
        ending: Ending,
        error: CodeStreamError | None = None,
    ) -> None:
        """The one way a tracker ends: the execution finished, the tracker gave up (too old, or
        Code Stream unreadable past the deadline), or the execution is gone. The summary shows
        it, a finished one resolves the alert too, and the row is closed."""
        assert record.id is not None
        status = (execution.status or "").strip().upper() or record.status
        outcome = await self.memory.outcome(record, now, final=ending != "finished")
        if outcome is None:  # finished, but the event cannot be read now: end at the next poll
            await self._reschedule(record, now, changed=False, error=None)
            return
        if ending == "finished":
            self.stats.changes += status != record.status
        await self.leadership.fence()
        await self._show(record, outcome, execution, ending, now)
        if ending == "finished" and record.alert_channel_id and record.alert_ts and outcome.event is not None:
            if await self.view.resolve_alert(record, outcome, execution, final_status=status, now=now):
                self.stats.alert_updates += 1
            else:
                self.stats.slack_failures += 1
            if status == "COMPLETED":  # fixed: the next failure of its series is a new alert
                await self.store.alerts.resolve(
                    record.alert_channel_id, record.alert_ts, now, kind=record.kind, event_id=record.event_id
                )
        if ending == "missing":
            status = NOT_FOUND_STATUS
        await self.store.followups.update(record.id, status=status, finished_at=now)
        self.memory.forget(record.id)
        self.stats.finished += 1
        self.stats.gave_up += ending == "gave_up"
        self.stats.not_found += ending == "missing"
        extra = {"followup_id": record.id, "execution_id": record.execution_id, "status": status}
        if ending == "missing":
            extra["error_class"] = type(error).__name__ if error is not None else None
            log.warning("execution not found; stopped following it", extra=extra)
        else:
            log.info("execution finished" if ending == "finished" else "gave up following an execution", extra=extra)

    async def _show(
        self, record: FollowupRecord, outcome: Outcome, execution: Execution, ending: Ending, now: datetime
    ) -> None:
        """Slack failures are logged by the view; the status is recorded regardless, so the next
        change renders the whole summary again."""
        if await self.view.show_progress(record, outcome, execution, ending=ending, now=now):
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
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        interval, delay = self.timing.next_poll(
            record.interval, changed=changed, rng=self._rng, retry_after=retry_after
        )
        changes: dict[str, object] = {"interval": interval, "next_poll_at": now + timedelta(seconds=delay)}
        if status is not None:
            changes["status"] = status
        await self.store.followups.update(record.id, **changes)
