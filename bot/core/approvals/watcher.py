"""The approvals watcher: finds Code Stream user operations waiting for a decision (status
ACTIVE), posts one request per operation where routing sends kind ``approval``, and redraws a
request once its operation was decided in Code Stream, expired or was canceled.

Beside the failure-alert watcher, not inside it: its own loop, its own lease (``approvals``),
so one replica polls at a time; the store's unique row per operation makes a post exactly once
even when two replicas overlap. No Slack here: ``ApprovalNotifier``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.user_operations import UserOperation
from bot.core.approvals.ports import ApprovalEnd, ApprovalNotifier
from bot.core.intents import retry_write
from bot.core.leases import LeaseHolder
from bot.core.requests import MessageRef
from bot.core.routing import Router
from bot.core.subscriptions import StoredRoutes
from bot.core.waiting import wait_event
from bot.store import ApprovalRecord, Store

log = logging.getLogger("bot.core.approvals")

LEASE: Final = "approvals"
PENDING_FILTER: Final = "status eq 'ACTIVE'"


@dataclass
class ApprovalStats:
    listed: int = 0
    posted: int = 0
    unrouted: int = 0
    old: int = 0  # pending since before this process watched (and the lookback): not posted
    ended: int = 0
    errors: list[str] = field(default_factory=list)


class ApprovalWatcher:
    def __init__(
        self,
        store: Store,
        client: CodeStreamClient,
        notifier: ApprovalNotifier,
        router: Router,
        *,
        interval: float,
        lease: LeaseHolder,
        page_size: int = 100,
        lookback: float | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.notifier = notifier
        self.router = router
        self.interval = interval
        self.holder = lease.name
        self.holder_gone = lease.gone  # a dead holder's lease is taken over at once
        self.page_size = page_size
        self.subscriptions = StoredRoutes(store)  # channels' own routes (kind approval, or any)
        # Like the failure watcher's first start: an approval requested longer than this before
        # the process began watching, and never posted, is not posted now (an upgrade, or a bot
        # first started, must not flood a channel with weeks-old requests). None: all are.
        self.lookback = lookback
        self._since_micros: int | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        log.info("approvals watcher started", extra={"holder": self.holder})
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except Exception:
                log.exception("approvals poll failed; trying again")
            await wait_event(self._stopping, self.interval)

    async def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(Exception):
            await self.store.liveness.release_lease(LEASE, self.holder)

    async def poll_once(self, *, force: bool = False) -> ApprovalStats:
        """One pass: post the new pending operations, redraw the ended ones. ``force``: without
        the lease (tests, tools)."""
        stats = ApprovalStats()
        self.router.use_stored(await self.subscriptions.load())  # one read a cycle, like the failure watcher
        if not self.router.may_route_approvals():
            return stats  # nowhere to post a request (yet): no lease, no Code Stream read
        if not force and not await self.store.liveness.acquire_lease(
            LEASE, self.holder, 3 * self.interval, holder_gone=self.holder_gone
        ):
            return stats
        try:
            pending = await self.client.list_user_operations(filter=PENDING_FILTER, top=self.page_size)
        except CodeStreamError as exc:
            log.warning("could not list approvals", extra={"error_class": type(exc).__name__})
            stats.errors.append(type(exc).__name__)
            return stats
        pending = [op for op in pending if op.pending and op.id]
        stats.listed = len(pending)
        known = await self.store.approvals.known_operations(
            [str(op.id) for op in pending], stale_before=self._stale_before()
        )
        for operation in pending:
            if str(operation.id) in known:
                continue
            if self._too_old(operation):
                stats.old += 1
                continue
            await self._post(operation, stats)
        listed = {str(op.id) for op in pending}
        for record in await self.store.approvals.open():
            if record.operation_id not in listed:
                await self._check_end(record, stats)
        return stats

    async def _post(self, operation: UserOperation, stats: ApprovalStats) -> None:
        decision = self.router.route_approval(operation.project, operation.pipeline)
        if not decision.alerts or decision.channel is None:
            stats.unrouted += 1
            return
        record = ApprovalRecord(
            operation_id=str(operation.id),
            project=operation.project,
            pipeline=operation.pipeline,
            execution_id=operation.execution_id,
            created_at=self.store.now(),
        )
        approval_id = await self.store.approvals.add(record)
        if approval_id is None:  # a row exists: another replica posts it, unless it was left unposted
            approval_id = await self.store.approvals.take_over(str(operation.id), stale_before=self._stale_before())
            if approval_id is None:
                return
        delivered = await self.notifier.post_approval(operation, channel=decision.channel, mention=decision.mention)
        if delivered.ts is None:
            log.warning("approval request not posted", extra={"channel_id": decision.channel, "why": delivered.refused})
            await self.store.approvals.forget(approval_id)  # the next poll tries again
            return
        ts, posted_id = delivered.ts, approval_id
        # Slack has it: recording it must not fail on a blip (unrecorded, it would be posted again).
        await retry_write(lambda: self.store.approvals.mark_posted(posted_id, decision.channel or "", ts))
        stats.posted += 1
        log.info("approval request posted", extra={"operation_id": operation.id, "channel_id": decision.channel})

    def _too_old(self, operation: UserOperation) -> bool:
        if self.lookback is None or operation.requested_on_micros is None:
            return False
        if self._since_micros is None:
            self._since_micros = int((time.time() - self.lookback) * 1_000_000)
        return operation.requested_on_micros < self._since_micros

    def _stale_before(self) -> datetime:
        """A request left unposted since before this (a crash mid-post) is posted again."""
        return self.store.now() - timedelta(seconds=max(60.0, 5 * self.interval))

    async def _check_end(self, record: ApprovalRecord, stats: ApprovalStats) -> None:
        """No longer listed as pending: read it; decided in Code Stream, expired or canceled."""
        try:
            operation = await self.client.get_user_operation(record.operation_id)
        except (NotFound, InvalidId):
            operation = UserOperation.model_validate({"id": record.operation_id, "status": "CANCELED"})
        except CodeStreamError as exc:
            log.info("approval read failed", extra={"error_class": type(exc).__name__})
            return
        end = await end_of(self.store, operation, self.client.auth.account())
        if end is None:
            return  # still pending (beyond the listed page): nothing to redraw
        await show_end(self.store, self.notifier, record, operation, end)
        stats.ended += 1


_SENT_BY_THE_BOT: Final = frozenset({"pending", "unknown", "done"})
_ACTION_FOR: Final = {"APPROVED": "approve", "REJECTED": "reject"}


def _same_account(responder: str, account: str) -> bool:
    """The same account: equal, or, when only one side names a domain, the same user name."""
    a, b = responder.strip().lower(), account.strip().lower()
    if a == b:
        return True
    if "@" in a and "@" in b:
        return False
    return a.split("@", 1)[0] == b.split("@", 1)[0]


async def end_of(store: Store, operation: UserOperation, bot_account: str | None) -> ApprovalEnd | None:
    """How an approval that is no longer pending ended, as its message should say it: decided
    through the bot's own account means decided from Slack, by the person whose decision the bot
    sent (its audit row), not "in Code Stream" by the bot's service account."""
    status = operation.status
    if status is None or status == "ACTIVE":
        return None
    by, message = operation.responded_by, operation.response_message
    if by and bot_account and _same_account(by, bot_account) and operation.id is not None:
        action = _ACTION_FOR.get(status)
        rows = await store.actions.list(kind="approval", event_id=operation.id, limit=200)
        sent = next((r for r in rows if r.action == action and r.status in _SENT_BY_THE_BOT), None)
        if sent is not None:
            return ApprovalEnd(status, "slack", sent.actor_id, message)
    return ApprovalEnd(status, "codestream", by, message)


async def show_end(
    store: Store, notifier: ApprovalNotifier, record: ApprovalRecord, operation: UserOperation, end: ApprovalEnd
) -> bool:
    """Record how an approval ended and redraw its request, once (whoever gets there first)."""
    finished = await store.approvals.finish(
        record.operation_id,
        status=end.status,
        decided_by=end.by,
        decided_in=end.decided_in,
        response_message=end.message,
        at=store.now(),
    )
    if not finished or record.channel_id is None or record.ts is None:
        return False
    return await notifier.show_approval_end(MessageRef(record.channel_id, record.ts, record.ts), operation, end)
