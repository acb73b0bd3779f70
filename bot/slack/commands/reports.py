"""The commands that only read, each showing only what the caller may see:

- ``/codestream list [kind]``: recent failed events, each with a Rerun button;
- ``/codestream audit [event|@user] [--since 7d] [--page n]``: who did what, and when;
- ``/codestream whoami``: which actions the access policy lets the caller take here (on which
  projects and pipelines), and which only in other channels — for people and for operators
  debugging their rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EVENT_KINDS
from bot.core import audit
from bot.core.access import AccessPolicy
from bot.core.audit_trail import AuditTrail
from bot.core.commands import Invocation
from bot.core.errors import UsageError
from bot.core.recent_failures import RecentFailures
from bot.core.webhook_health import WebhookBoard
from bot.slack.context import InteractionContext
from bot.slack.interaction import Interaction
from bot.slack.render.alert import execution_urls
from bot.slack.render.audit import render_audit
from bot.slack.render.messages import SlackMessage, render_error, render_event_list, render_usage_error
from bot.slack.render.webhooks import render_webhooks
from bot.slack.render.whoami import render_whoami


@dataclass(frozen=True)
class Reports:
    """Answers ``list``, ``audit`` and ``whoami``."""

    context: InteractionContext
    failures: RecentFailures
    trail: AuditTrail
    access: AccessPolicy
    execution_link: Callable[[str | None], str | None]
    webhooks: WebhookBoard

    async def webhook_health(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        """``/codestream webhooks [project]``."""
        viewer = await self.context.viewer(interaction)
        project = " ".join(invocation.args).strip().strip('"') or None
        try:
            found = await self.webhooks.health(viewer, project=project, now=datetime.now(UTC))
        except CodeStreamError as exc:
            return render_error(exc)
        return render_webhooks(found, project=project)

    async def failures_list(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        viewer = await self.context.viewer(interaction)
        kinds = [invocation.kind] if invocation.kind else list(EVENT_KINDS)
        try:
            events = await self.failures.visible(viewer, kinds)  # only what this person may see, here
        except CodeStreamError as exc:
            return render_error(exc)
        urls = execution_urls(events, self.execution_link)
        now = datetime.now(UTC)
        muted = await self.failures.muted(events, now)
        return render_event_list(events, execution_urls=urls, now=now, muted=muted)

    async def audit(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        viewer = await self.context.viewer(interaction)
        try:
            query = audit.parse_audit_args(invocation.args)
        except UsageError as exc:
            return render_usage_error(exc)
        rows, has_more = await self.trail.page(viewer, query)
        return render_audit(rows, query, has_more=has_more, now=datetime.now(UTC))

    async def whoami(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        viewer = await self.context.viewer(interaction)
        grants = await self.access.grants(viewer)
        return render_whoami(grants, user_id=viewer.user_id, channel_id=viewer.channel_id)
