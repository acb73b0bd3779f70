"""What the listeners hand over to: the interaction context and one handler per flow, built once
by the app (``bot.app.slack_handlers``); and the shape of a listener."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.core.followup import FollowupTracker
from bot.slack.commands import CommandHandlers
from bot.slack.commands.mutes import Mutes
from bot.slack.context import InteractionContext
from bot.slack.handlers.approval_forms import ApprovalForms
from bot.slack.handlers.digest_rows import DigestRows
from bot.slack.handlers.event_actions import EventActions
from bot.slack.handlers.execution_control import ExecutionControls
from bot.slack.handlers.home import HomeTab
from bot.slack.handlers.pipeline_runs import PipelineRuns
from bot.slack.handlers.webhook_alerts import WebhookAlerts


@dataclass(frozen=True)
class Handlers:
    """The context and one handler per flow; ``commands``: those the command table reaches."""

    context: InteractionContext
    actions: EventActions
    controls: ExecutionControls
    approvals: ApprovalForms
    digests: DigestRows
    home: HomeTab
    mutes: Mutes
    commands: CommandHandlers
    webhooks: WebhookAlerts

    @property
    def runs(self) -> PipelineRuns:
        return self.commands.runs

    def use_followups(self, tracker: FollowupTracker) -> None:
        """Follow through with ``tracker`` from now on (tests and benchmarks swap it)."""
        self.actions.followups = tracker
        self.controls.followups = tracker
        self.commands.runs.followups = tracker


#: A listener: the handlers (bound at registration), then what Bolt passes (``args``: the ack,
#: the payload, the request).
Listener = Callable[[Handlers, AsyncArgs], Awaitable[None]]
