"""Approve / Reject on an approval request (each opens a modal for a response message), and the
modal's submission."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.codestream.user_operations import Decision
from bot.core.errors import UsageError
from bot.slack.interaction import Interaction
from bot.slack.render.approval import (
    ACTION_APPROVE,
    ACTION_REJECT,
    DECISION_VIEW,
    parse_decision_submission,
    parse_decision_value,
)
from bot.slack.render.messages import render_usage_error
from bot.slack.surfaces import Surfaces

_DECISIONS: dict[str, Decision] = {ACTION_APPROVE: "APPROVED", ACTION_REJECT: "REJECTED"}


def register(app: AsyncApp, surfaces: Surfaces) -> None:
    async def on_decision_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        await ack()
        # Not behind the acks: the form must open within Slack's 3 s for the trigger.
        if not await surfaces.accepted_once(request.headers, behind=False):
            return
        interaction = Interaction.from_block_action(body)
        decision = _DECISIONS.get(str(action.get("action_id")))
        async with surfaces.working():
            try:
                operation_id = parse_decision_value(str(action.get("value") or ""))
            except UsageError as exc:
                await surfaces.answer(interaction, render_usage_error(exc))
                return
            if decision is not None:
                await surfaces.open_decision(operation_id, decision, interaction)

    for action_id in _DECISIONS:
        app.action(action_id)(on_decision_button)

    @app.view(DECISION_VIEW)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], request: AsyncBoltRequest) -> None:
        await ack()  # closes the modal; the answer comes in the channel
        if not await surfaces.accepted_once(request.headers):
            return
        interaction = Interaction.from_view_submission(body)
        async with surfaces.working():
            try:
                operation_id, decision, message = parse_decision_submission(view)
            except UsageError:
                return  # not our form: nothing to say, nowhere to say it
            await surfaces.submit_decision(operation_id, decision, message, interaction)
