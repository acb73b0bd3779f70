"""The port through which a cancel, pause or resume known only later reaches people (beside
``bot.core.ports``, which the follow-through imports: this one needs the control outcome)."""

from __future__ import annotations

from typing import Protocol

from bot.core.control.requests import ControlOutcome
from bot.core.requests import MessageRef


class ControlNotifier(Protocol):
    async def control_settled(self, outcome: ControlOutcome, answer: MessageRef | None) -> None:
        """Update ``answer`` (where the unknown outcome was shown) in place, or post where the
        request came from. Never raises."""
        ...


class LoggedControls:
    """Without Slack (``check``, tools): the outcome is in the audit trail and the log only."""

    async def control_settled(self, outcome: ControlOutcome, answer: MessageRef | None) -> None:
        return None
