"""``/codestream subscribe …``, ``subscriptions`` and ``unsubscribe <n>``: a channel routes
failures to itself. A change is said in the channel (everyone sees who routed what here);
usage errors and refusals only to the person."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from bot.codestream.models import as_kind
from bot.core import subscriptions
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.channel_subscriptions import ChannelSubscriptions
from bot.core.commands import Invocation
from bot.core.errors import AccessDenied, StoreUnavailable, UsageError
from bot.core.routing import Router, StoredRoute, describe_match
from bot.core.subscriptions import UNSUBSCRIBE_USAGE, Asker
from bot.slack.context import InteractionContext
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_error, render_usage_error
from bot.slack.render.subscriptions import (
    render_already_subscribed,
    render_subscribed,
    render_subscriptions,
    render_unsubscribed,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _guarded(what: str, change: Awaitable[T]) -> T | SlackMessage:
    """The change's result, or what to answer the person when it could not be made."""
    try:
        return await change
    except UsageError as exc:
        return render_usage_error(exc)
    except AccessDenied as exc:
        return render_error(exc)
    except Exception:
        log.exception("%s failed", what)
        return render_error(StoreUnavailable())


@dataclass(frozen=True)
class Subscriptions:
    """Answers ``subscribe``, ``subscriptions`` and ``unsubscribe`` for the channel they are typed in."""

    context: InteractionContext
    subscriptions: ChannelSubscriptions
    access: AccessPolicy  # who may see a configured route
    routing: Router  # BOT_CONFIG's routes and the fallback (read-only here)
    delivery: Delivery

    async def _asker(self, interaction: Interaction) -> Asker:
        who = await self.context.who(interaction)
        return Asker(who.actor, interaction.channel_id, who.team_id)

    async def subscribe(self, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
        try:
            filters = subscriptions.parse_filters(invocation.args)
        except UsageError as exc:
            return render_usage_error(exc)
        asker = await self._asker(interaction)
        done = await _guarded("subscribe", self.subscriptions.subscribe(asker, filters))
        if isinstance(done, SlackMessage):
            return done
        record = done.record
        if done.already:
            return render_already_subscribed(record)
        assert record.id is not None and interaction.channel_id is not None
        shadow = self.routing.shadowing_rule(StoredRoute(record.id, interaction.channel_id, filters))
        shadowed_by = None
        if shadow is not None:
            rule = self.routing.routes[shadow]
            shadowed_by = (shadow, describe_match(rule.match), None if rule.drop else rule.channel)
        actor_id = asker.actor.user_id
        said = render_subscribed(record, actor_id=actor_id, shadowed_by=shadowed_by, overlaps=done.overlaps)
        if await self.delivery.post(interaction.channel_id, said) is None:
            # The bot may not post here (not a member): say it through the response_url, with why
            # no alert will arrive until it is invited.
            said = render_subscribed(
                record, actor_id=actor_id, shadowed_by=shadowed_by, bot_missing=True, overlaps=done.overlaps
            )
            await self.delivery.public(None, said, respond=interaction.respond)
        return None

    async def end(self, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
        if len(invocation.args) != 1 or not invocation.args[0].lstrip("#").isdigit():
            return render_usage_error(UsageError(UNSUBSCRIBE_USAGE))
        number = int(invocation.args[0].lstrip("#"))
        asker = await self._asker(interaction)
        record = await _guarded("unsubscribe", self.subscriptions.unsubscribe(asker, number))
        if isinstance(record, SlackMessage):
            return record
        said = render_unsubscribed(record, actor_id=asker.actor.user_id)
        await self.delivery.public(interaction.channel_id, said, respond=interaction.respond)
        return None

    async def show(self, interaction: Interaction, invocation: Invocation) -> SlackMessage:
        """The channel's subscriptions the caller may see, and the configuration's routes to it."""
        viewer = await self.context.viewer(interaction)
        channel = interaction.channel_id
        if channel is None:
            return render_usage_error(UsageError("Ask in a channel: subscriptions belong to the channel."))
        try:
            records = await self.subscriptions.of_channel(channel)
        except Exception:
            log.exception("listing subscriptions failed")
            return render_error(StoreUnavailable())
        shown = await self.subscriptions.visible(viewer, records)
        configured = await self._configured(viewer, channel)
        return render_subscriptions(shown, configured=configured, hidden=len(records) - len(shown))

    async def _configured(self, viewer: Viewer, channel: str) -> list[str]:
        """The configuration's routes to ``channel`` the caller may see, and the fallback."""
        routing = self.routing
        configured: list[str] = []
        for index, rule in routing.rules_to(channel):
            kinds, projects, pipelines = rule.match.kind, rule.match.project, rule.match.pipeline
            # A rule is shown to whoever may see what it names (one project and pipeline at most;
            # a rule naming several is shown to those whose rules cover any project or pipeline).
            scope = Scope(
                as_kind(kinds[0]) if kinds else "git",  # approval requests: no event kind
                projects[0] if projects and len(projects) == 1 else None,
                pipelines[0] if pipelines and len(pipelines) == 1 else None,
            )
            if await self.access.may_see(viewer, scope):
                mention = ", with a mention" if rule.mention else ""
                configured.append(f"routes[{index}]: {describe_match(rule.match)}{mention}")
        if routing.fallback == channel:
            configured.append("BOT_ALERT_CHANNEL: failures no route or subscription takes")
        return configured
