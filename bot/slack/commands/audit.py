"""``/codestream audit [event|@user] [--since 7d] [--page n]``: who did what, and when — only the
rows about events the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.codestream.models import as_kind
from bot.core import audit
from bot.core.access import Scope
from bot.core.commands import Invocation
from bot.core.errors import UsageError
from bot.slack.interaction import Interaction
from bot.slack.render.audit import render_audit
from bot.slack.render.messages import SlackMessage, render_usage_error
from bot.slack.surfaces import Surfaces
from bot.store import ActionRecord


async def audit_trail(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage:
    viewer = await surfaces.viewer(interaction)
    try:
        query = audit.parse_audit_args(invocation.args)
    except UsageError as exc:
        return render_usage_error(exc)
    policy = surfaces.access

    async def visible(row: ActionRecord) -> bool:
        # Rows on executions and approvals have no event kind: rules limited to kinds do not
        # show them; project and pipeline rules do.
        return await policy.may_see(viewer, Scope(as_kind(row.kind), row.project, row.pipeline))

    rows, has_more = await audit.fetch(surfaces.store, query, visible=visible)
    return render_audit(rows, query, has_more=has_more, now=datetime.now(UTC))
