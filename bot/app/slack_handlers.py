"""The Slack handlers of a running bot, each built with the core pieces it uses (the composition
root's part for Slack: only ``bot.app`` holds the store and the Code Stream client)."""

from __future__ import annotations

from bot.app.runtime import Runtime
from bot.core.alert_lookup import AlertLookup
from bot.core.approval_desk import ApprovalDesk
from bot.core.audit_trail import AuditTrail
from bot.core.channel_subscriptions import ChannelSubscriptions
from bot.core.digest_runs import DigestRuns
from bot.core.followed import FollowedExecutions
from bot.core.home import HomeQueries
from bot.core.muting import Muting
from bot.core.recent_failures import RecentFailures
from bot.core.replay import ReplayLedger
from bot.core.routing import Router
from bot.core.webhook_health import WebhookBoard
from bot.core.webhook_recovery import WebhookRecovery
from bot.slack.alerts import AlertFinder, AlertMarks
from bot.slack.commands import CommandHandlers
from bot.slack.commands.mutes import Mutes
from bot.slack.commands.reports import Reports
from bot.slack.commands.subscriptions import Subscriptions
from bot.slack.context import InteractionContext
from bot.slack.handlers.approval_forms import ApprovalForms
from bot.slack.handlers.digest_rows import DigestRows
from bot.slack.handlers.event_actions import EventActions
from bot.slack.handlers.execution_control import ExecutionControls
from bot.slack.handlers.home import Health, HomeTab
from bot.slack.handlers.pipeline_runs import PipelineRuns
from bot.slack.handlers.webhook_alerts import WebhookAlerts
from bot.slack.listeners import Handlers
from bot.slack.replay import SlackReplays
from bot.slack.users import UserDirectory


def build_handlers(runtime: Runtime, *, health: Health) -> Handlers:
    """What the Slack listeners hand over to (Slack configured, the follow-through built first:
    the handlers keep the tracker they are given)."""
    assert runtime.web is not None and runtime.identity is not None, "Slack is not configured"
    assert runtime.followups is not None, "build_followups() before build_handlers()"
    store, client, access, delivery = runtime.store, runtime.client, runtime.access, runtime.delivery
    link = runtime.settings.execution_link
    notifier = runtime.notifier()
    board = notifier.digests
    assert board is not None, "the runtime's notifier draws digests"
    context = InteractionContext(
        delivery=delivery,
        users=UserDirectory(runtime.web),
        replays=SlackReplays(ReplayLedger(store)),
        inflight=runtime.inflight,
        foreground=runtime.foreground,
    )
    alerts = AlertFinder(AlertLookup(store), runtime.web, runtime.identity)
    marks = AlertMarks(notifier, link)
    actions = EventActions(context, runtime.actions, delivery, alerts, marks, board, runtime.followups)
    controls = ExecutionControls(context, runtime.controls, delivery, FollowedExecutions(store), runtime.followups)
    failures = RecentFailures(client, store, access)
    routing = Router.from_config(runtime.file_config, runtime.settings.bot_alert_channel)
    mutes = Mutes(context, Muting(store, client, access), delivery)
    commands = CommandHandlers(
        actions=actions,
        controls=controls,
        reports=Reports(
            context,
            failures,
            AuditTrail(store, access),
            access,
            link,
            WebhookBoard(client, access, runtime.settings.bot_webhook_warn_days),
        ),
        mutes=mutes,
        subscriptions=Subscriptions(context, ChannelSubscriptions(store, access), access, routing, delivery),
        runs=PipelineRuns(context, runtime.runs, delivery, runtime.followups),
    )
    desk = ApprovalDesk(store, runtime.decisions)
    return Handlers(
        context=context,
        actions=actions,
        controls=controls,
        approvals=ApprovalForms(context, runtime.decisions, desk, delivery),
        digests=DigestRows(context, DigestRuns(store, board), actions, delivery),
        home=HomeTab(context, HomeQueries(store, failures, access), actions, runtime.web, link, health),
        mutes=mutes,
        commands=commands,
        webhooks=WebhookAlerts(context, WebhookRecovery(client, store), access, actions, notifier, delivery),
    )
