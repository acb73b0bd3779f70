"""Approve / Reject on a Code Stream approval request: the button opens a form for a response
message (or says at once why this person may not decide), and the form's submission decides,
through ``ApprovalDecisions``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.codestream.errors import CodeStreamError
from bot.codestream.user_operations import Decision
from bot.core.approval_desk import ApprovalDesk
from bot.core.approvals.decide import ApprovalDecisions, DecisionRequest
from bot.core.errors import UsageError
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.approval import approval_title, render_decision_modal, render_decision_outcome
from bot.slack.render.messages import render_error, render_usage_error


@dataclass(frozen=True)
class ApprovalForms:
    """Opens the decision form and decides on its submission."""

    context: InteractionContext
    decisions: ApprovalDecisions
    desk: ApprovalDesk
    delivery: Delivery

    async def open(self, operation_id: str, decision: Decision, interaction: Interaction) -> None:
        """Someone who may decide gets the form for a response message; anyone else a specific
        answer at once (before typing anything). Started not behind the acks: the form must open
        within Slack's 3 s for the trigger."""
        request = await self._request(operation_id, decision, "", interaction, interaction.channel_id)
        try:
            operation = await self.desk.operation(operation_id)
        except CodeStreamError as exc:
            await self.context.answer(interaction, render_error(exc))
            return
        refusal = await self.decisions.refusal(request, operation)
        if refusal is not None:
            outcome = await self.decisions.refused(request, refusal, operation)
            await self.context.answer(interaction, render_decision_outcome(outcome))
            return
        if not operation.pending:
            outcome = await self.decisions.decide(request)  # says it ended, and redraws it; sends nothing
            await self.context.answer(interaction, render_decision_outcome(outcome))
            return
        view = render_decision_modal(operation_id, decision, title=approval_title(operation))
        if interaction.trigger_id is None or not await self.delivery.open_view(interaction.trigger_id, view):
            failed = UsageError("Slack did not open the form; try again.")
            await self.context.answer(interaction, render_usage_error(failed))

    async def submit(self, operation_id: str, decision: Decision, message: str, interaction: Interaction) -> None:
        """The form's submission: decide, and tell the person if it did not go through (a done
        decision shows in the request message itself)."""
        channel = await self.desk.posted_in(operation_id)
        request = await self._request(operation_id, decision, message, interaction, channel)
        outcome = await self.decisions.decide(request)
        if channel is not None and outcome.status != "done":
            await self.delivery.ephemeral(channel, interaction.user_id, render_decision_outcome(outcome))
        await self.desk.follow_unknown(outcome)

    async def _request(
        self, operation_id: str, decision: Decision, message: str, interaction: Interaction, channel: str | None
    ) -> DecisionRequest:
        who = await self.context.who(interaction)
        return DecisionRequest(
            operation_id=operation_id,
            decision=decision,
            message=message,
            email=who.email,
            channel_id=channel,
            **who.asking(interaction),
        )
