"""What the Slack approval forms need beside ``ApprovalDecisions``: the operation as Code Stream
has it now, the channel its request was posted in, and the hand-over of a decision whose outcome
is unknown to the reconciler."""

from __future__ import annotations

from dataclasses import dataclass

from bot.codestream.user_operations import UserOperation
from bot.core.approvals.decide import ApprovalDecisions, DecisionOutcome
from bot.store import Store


@dataclass(frozen=True)
class ApprovalDesk:
    store: Store
    decisions: ApprovalDecisions

    async def operation(self, operation_id: str) -> UserOperation:
        """The approval as Code Stream has it now; raises CodeStreamError."""
        return await self.decisions.read(operation_id)

    async def posted_in(self, operation_id: str) -> str | None:
        """The channel the approval request was posted in, when the bot posted it."""
        record = await self.store.approvals.get(operation_id)
        return record.channel_id if record is not None else None

    async def follow_unknown(self, outcome: DecisionOutcome) -> None:
        """A decision sent with no answer known: the reconciler reads it back from now on."""
        await self.decisions.follow_unknown(outcome, None)
