"""Cancel, pause and resume an execution: the buttons on a followed execution's summary and
``/codestream cancel|pause|resume-execution``, through ``ExecutionControl.perform``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.codestream.models import EventKind
from bot.core.commands import Invocation
from bot.core.control import ControlRequest, ExecutionControl
from bot.core.followed import FollowedExecutions
from bot.core.followup import FollowupTracker
from bot.core.requests import MessageRef
from bot.core.verbs import ControlVerb, control_spec
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.control import render_control_outcome

log = logging.getLogger(__name__)


@dataclass
class ExecutionControls:
    """Cancel, pause and resume of an execution, from a button or a command."""

    context: InteractionContext
    controls: ExecutionControl
    delivery: Delivery
    followed: FollowedExecutions
    followups: FollowupTracker  # a followed summary shows who acted

    async def from_command(self, interaction: Interaction, invocation: Invocation) -> None:
        """``/codestream cancel|pause|resume-execution <execution id or link>``."""
        spec = control_spec(invocation.command)
        assert spec is not None and invocation.event_id is not None
        await self.control(spec.name, invocation.event_id, interaction)

    async def control(
        self, verb: ControlVerb, execution_id: str, interaction: Interaction, *, kind: EventKind | None = None
    ) -> None:
        """A summary's button (``interaction.alert`` is the summary) or the command. Done (or not
        known yet): everyone sees who did it, in the summary's thread or where the command was
        typed, and a followed summary updates in place; anything else only the person who asked
        sees."""
        if kind is None:
            kind = await self.followed.kind_of(execution_id)
        who = await self.context.who(interaction)
        channel = interaction.channel_id
        request = ControlRequest(
            verb=verb, execution_id=execution_id, channel_id=channel, kind=kind, **who.asking(interaction)
        )
        outcome = await self.controls.perform(request)
        message = render_control_outcome(outcome, now=datetime.now(UTC))
        if outcome.status not in ("done", "unknown"):
            await self.context.answer(interaction, message)
            return
        channel, thread_ts = interaction.channel_id, interaction.thread_ts
        ts = await self.delivery.public(channel, message, thread_ts=thread_ts, respond=interaction.respond)
        try:
            if outcome.status == "unknown":
                answer = MessageRef(channel, ts, ts) if channel and ts else None
                await self.controls.follow_unknown(outcome, answer)
            else:
                await self.followups.acted(execution_id, verb=verb, actor_id=request.actor.user_id, at=outcome.at)
        except Exception:
            log.exception("after an execution action: follow-up failed", extra={"action_id": outcome.action_id})
