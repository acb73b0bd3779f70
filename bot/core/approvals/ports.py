"""How approvals reach people: the request posted in a channel, then redrawn once it is decided
(in Slack or in Code Stream), expired or canceled. ``SlackNotifier`` implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.codestream.user_operations import UserOperation, UserOpStatus
from bot.core.ports import Delivered
from bot.core.requests import MessageRef

DecidedIn = Literal["slack", "codestream"]


@dataclass(frozen=True)
class ApprovalEnd:
    """How an approval ended, as its message shows it."""

    status: UserOpStatus  # APPROVED, REJECTED, EXPIRED or CANCELED
    decided_in: DecidedIn
    by: str | None = None  # a Slack user id (decided in Slack) or Code Stream's respondedBy
    message: str | None = None  # the response message


class ApprovalNotifier(Protocol):
    async def post_approval(self, operation: UserOperation, *, channel: str, mention: str | None) -> Delivered:
        """The request, with Approve and Reject."""
        ...

    async def show_approval_end(self, where: MessageRef, operation: UserOperation, end: ApprovalEnd) -> bool:
        """The request, redrawn without its buttons, saying how it ended."""
        ...
