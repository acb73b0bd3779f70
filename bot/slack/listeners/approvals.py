"""Approve / Reject on an approval request (each opens a form for a response message), and the
form's submission."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.codestream.user_operations import Decision
from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener
from bot.slack.render.approval import parse_decision_submission, parse_decision_value


async def on_decision_button(decision: Decision, handlers: Handlers, args: AsyncArgs) -> None:
    interaction = Interaction.from_block_action(args.body)
    value = str((args.action or {}).get("value") or "")

    async def open_form() -> None:
        await handlers.approvals.open(parse_decision_value(value), decision, interaction)

    # Not behind the acks: the form must open within Slack's 3 s for the trigger.
    await handlers.context.start(args.ack, args.request, interaction, open_form, behind=False)


async def on_decision_submitted(handlers: Handlers, args: AsyncArgs) -> None:
    """The form's submission; the ack closes the form, the answer comes in the channel. A form
    that is not the bot's: nothing to say, and nowhere to say it (no channel)."""
    interaction = Interaction.from_view_submission(args.body)
    view = args.view or {}

    async def decide() -> None:
        operation_id, decision, message = parse_decision_submission(view)
        await handlers.approvals.submit(operation_id, decision, message, interaction)

    await handlers.context.start(args.ack, args.request, interaction, decide)


#: Their action ids and the form's callback id, as render.approval draws them.
ACTIONS: Final[Mapping[str, Listener]] = {
    "codestream_approval_approve": partial(on_decision_button, "APPROVED"),
    "codestream_approval_reject": partial(on_decision_button, "REJECTED"),
}
VIEWS: Final[Mapping[str, Listener]] = {"codestream_approval_decision": on_decision_submitted}
