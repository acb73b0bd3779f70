"""Settling a decision whose answer was ambiguous: the reconciler hands rows of kind
``approval`` here. The operation read back shows it decided as asked (done), still pending at
the deadline (not started: safe to try again), or decided otherwise / gone (unknown: not ours
to claim)."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.user_operations import Decision, UserOperation
from bot.core.approvals.decide import DONE, ApprovalDecisions
from bot.core.intents import stored_surface
from bot.core.readback import Verdict
from bot.store import ActionRecord

log = logging.getLogger("bot.core.approvals")


class ApprovalReadBack:
    def __init__(self, decisions: ApprovalDecisions) -> None:
        self.decisions = decisions

    async def read(self, row: ActionRecord, now: datetime) -> tuple[Verdict, UserOperation | None]:
        try:
            # The reconciler's read: the background pool, never behind people's slow requests.
            operation = await self.decisions.target.client.background.get_user_operation(row.event_id)
        except (NotFound, InvalidId):
            return "gone", None
        except CodeStreamError:
            return "unreadable", None
        wanted = "APPROVED" if row.action == "approve" else "REJECTED"
        if operation.status == wanted:
            return "done", operation
        if not operation.pending:
            return "gone", operation
        if row.settle_by is not None and now >= row.settle_by:
            return "not_started", operation
        return "later", operation

    async def settle(
        self, row: ActionRecord, status: str, operation: UserOperation | None, now: datetime, why: Verdict
    ) -> bool:
        changes = {"status": DONE if status == "done" else status, "finished_at": now, "next_check_at": None}
        if not await self.decisions.lifecycle.settle(row, changes, settle_for=None):
            return False
        if status == "done" and operation is not None:
            decision: Decision = "APPROVED" if row.action == "approve" else "REJECTED"
            # Code Stream keeps the response message: the redrawn request shows it from there.
            await self.decisions.show_decided(
                row.event_id, operation, decision, row.actor_id, operation.response_message or ""
            )
        elif operation is not None and operation.status not in (None, "ACTIVE"):
            await self.decisions.show_ended(row.event_id, operation)
        log.info(
            "approval decision settled %s after reading it back",
            status,
            extra={"action_id": row.id, "surface": stored_surface(row.surface)},
        )
        return True
