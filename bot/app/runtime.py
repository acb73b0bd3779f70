"""The composition root: the long-lived pieces of a running bot, built once from Settings, each
handed its collaborators, and closed once. Only ``bot.app`` (and tests) use this module."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.app.codestream import build_codestream_client
from bot.app.settings import Settings, secret_values
from bot.app.watching import alert_policy
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.core import metrics
from bot.core.access import AccessPolicy, WorkspaceGate, build_policy, parse_access_config, split_ids
from bot.core.approvals.approvers import Approvers
from bot.core.approvals.decide import ApprovalDecisions, ApprovalTarget
from bot.core.approvals.readback import ApprovalReadBack
from bot.core.approvals.watcher import ApprovalWatcher
from bot.core.control.perform import ExecutionControl, ExecutionTarget
from bot.core.control.ports import LoggedControls
from bot.core.control.readback import ControlReadBack
from bot.core.digests import DigestBoard, Draw
from bot.core.fileconfig import FileConfig, load_file_config
from bot.core.followup import FollowupTiming, FollowupTracker
from bot.core.foreground import Foreground
from bot.core.inflight import InFlight
from bot.core.leases import LeaseHolder
from bot.core.lifecycle import Lifecycle
from bot.core.liveness import Liveness, new_replica_id
from bot.core.logs import redact
from bot.core.people import AuthorMentions
from bot.core.perform import EventPerformer, EventTarget
from bot.core.ports import OutcomeNotifier
from bot.core.readback import EventReadBack, ReadBack
from bot.core.reconcile import Reconciler, ReconcileTiming
from bot.core.routing import Router
from bot.core.run_readback import LoggedRuns, RunReadBack
from bot.core.runs import PipelineRunner, PipelineTarget
from bot.core.watcher import Watcher, WatchTiming
from bot.slack.app import SlackRetry, build_web_client
from bot.slack.delivery import Delivery
from bot.slack.identity import SlackIdentity
from bot.slack.notifier import SlackNotifier
from bot.slack.pacing import ChannelPacer
from bot.slack.people import SlackEmailDirectory
from bot.slack.usergroups import SlackGroupDirectory
from bot.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    client: CodeStreamClient
    store: Store
    actions: EventPerformer
    access: AccessPolicy
    web: AsyncWebClient | None = None  # the one Slack Web API client, when Slack is configured
    file_config: FileConfig = field(default_factory=FileConfig)  # BOT_CONFIG: routes and access rules
    # Requests being answered now: the work after earlier acks yields to them at each I/O step.
    foreground: Foreground = field(default_factory=Foreground)
    # Built here, not passed in:
    inflight: InFlight = field(default_factory=InFlight, init=False)  # Slack interactions being worked on
    followups: FollowupTracker | None = field(default=None, init=False)  # built when Slack is configured
    replica: str = field(default_factory=new_replica_id, init=False)
    # tells dead lease holders and action owners from live ones
    liveness: Liveness = field(init=False)
    identity: SlackIdentity | None = field(init=False)  # the bot's own workspace and ids, with Slack

    def __post_init__(self) -> None:
        self.identity = SlackIdentity(self.web) if self.web is not None else None
        self.liveness = Liveness(self.store, self.replica)
        self.lifecycle.owner = self.replica

    @property
    def lifecycle(self) -> Lifecycle:
        """The intent lifecycle every action runs through (one per process)."""
        return self.actions.lifecycle

    @functools.cached_property
    def delivery(self) -> Delivery:
        """One per process: its per-channel pacing must see all of the bot's traffic."""
        assert self.web is not None, "Slack is not configured"
        return Delivery(self.web, ChannelPacer(rate=self.settings.bot_slack_channel_rate))

    @functools.cached_property
    def _notifier(self) -> SlackNotifier:
        return SlackNotifier(self.delivery, execution_link=self.settings.execution_link, digests=self._digest_board)

    def notifier(self, delivery: Delivery | None = None) -> SlackNotifier:
        """The core's ports, implemented on Slack (one per process unless ``delivery`` is given)."""
        if delivery is None:
            return self._notifier
        return SlackNotifier(delivery, execution_link=self.settings.execution_link, digests=self._digest_board)

    def _digest_board(self, draw: Draw) -> DigestBoard:
        return DigestBoard(self.store, draw)

    def build_followups(self, timing: FollowupTiming | None = None) -> FollowupTracker:
        """The follow-through, from BOT_FOLLOW_*; it updates Slack through ``web``."""
        settings = self.settings
        timing = timing or FollowupTiming(lease_ttl=settings.bot_follow_lease_seconds)
        # The settings' limits hold whatever the timing (the demo and tests follow faster).
        timing = replace(timing, max_hours=settings.bot_follow_max_hours, poll_budget=settings.bot_follow_poll_budget)
        self.followups = FollowupTracker(
            self.store,
            self.client.background,
            self.notifier(),
            execution_url=settings.execution_ui_url,
            timing=timing,
            lease=LeaseHolder(self.replica, self.lease_holder_gone),
        )
        return self.followups

    @functools.cached_property
    def authors(self) -> AuthorMentions | None:
        """Author mentions (BOT_MENTION_AUTHOR): the people map, then Slack's lookup by e-mail;
        one per process, so its cache is shared."""
        if not self.settings.bot_mention_author:
            return None
        directory = SlackEmailDirectory(self.web) if self.web is not None else None
        return AuthorMentions(self.file_config.people, directory)

    def watcher(
        self,
        router: Router,
        delivery: Delivery | None = None,
        *,
        timing: WatchTiming,
        holder: str | None = None,
        **policy: Any,
    ) -> Watcher:
        """A watcher on this runtime's store, client and Slack, polling on ``timing``; ``holder``
        and ``policy`` (``AlertPolicy``'s fields) replace what the settings say (tests, tools)."""
        notifier = self.notifier(delivery)
        return Watcher(
            self.store,
            self.client.background,
            notifier,
            router,
            timing=timing,
            lease=LeaseHolder(self.replica if holder is None else holder, self.lease_holder_gone),
            policy=replace(alert_policy(self.settings, self.authors), **policy),
            digests=notifier.digests,
        )

    @functools.cached_property
    def controls(self) -> ExecutionControl:
        """Cancel, pause and resume of executions: the same lifecycle and access as ``actions``."""
        target = ExecutionTarget(self.client, self.lifecycle)
        return ExecutionControl(target, self.settings.execution_ui_url, self.access)

    def control_readback(self) -> ControlReadBack:
        """The reconciler's side of execution control, telling Slack (when configured)."""
        notifier = self.notifier() if self.web is not None else LoggedControls()
        return ControlReadBack(
            self.lifecycle,
            self.client.background,
            notifier,
            execution_url=self.settings.execution_ui_url,
            tracker=self.followups,
        )

    @functools.cached_property
    def runs(self) -> PipelineRunner:
        """Running pipelines from Slack: the same lifecycle and access as ``actions``."""
        return PipelineRunner(PipelineTarget(self.client, self.lifecycle), self.settings.execution_ui_url, self.access)

    def run_readback(self) -> RunReadBack:
        """The reconciler's side of pipeline runs, telling Slack (when configured)."""
        notifier = self.notifier() if self.web is not None else LoggedRuns()
        return RunReadBack(
            self.lifecycle,
            self.client.background,
            notifier,
            execution_url=self.settings.execution_ui_url,
            tracker=self.followups,
        )

    @functools.cached_property
    def decisions(self) -> ApprovalDecisions:
        """Approving and rejecting Code Stream approvals from Slack."""
        approvers = Approvers(
            access=self.access,
            groups=SlackGroupDirectory(self.web) if self.web is not None else None,
            approver_groups=self.file_config.approver_groups,
            listed_only=self.settings.bot_approvals_listed_only,
        )
        return ApprovalDecisions(ApprovalTarget(self.client, self.lifecycle), self.notifier(), approvers)

    def reconciler(self, notifier: OutcomeNotifier, timing: ReconcileTiming | None = None) -> Reconciler:
        """The reconciler of this replica: events, executions and (with Slack) approvals read
        back; it wakes when an unknown outcome is handed over."""
        settings = self.settings
        events = EventReadBack(
            self.lifecycle,
            self.client.background,
            notifier,
            execution_url=settings.execution_ui_url,
            dedupe_seconds=settings.bot_dedupe_seconds,
            tracker=self.followups,
        )
        others: dict[str, ReadBack] = {"execution": self.control_readback(), "pipeline": self.run_readback()}
        if self.web is not None:
            others["approval"] = ApprovalReadBack(self.decisions)
        # A process's own open action is taken over only once its POST surely ended.
        stuck_after = max(600.0, self.lifecycle.post_budget_seconds + 60)
        reconciler = Reconciler(
            self.lifecycle,
            events,
            others,
            retention_days=settings.bot_audit_retention_days,
            timing=timing or ReconcileTiming(stuck_after=stuck_after),
        )
        self.lifecycle.wake_reconciler = reconciler.wake
        return reconciler

    def approval_watcher(self, router: Router, *, holder: str | None = None, **options: Any) -> ApprovalWatcher:
        """An approvals watcher on this runtime's store, client and Slack (tests, tools)."""
        options.setdefault("interval", self.settings.bot_approvals_interval)
        lease = LeaseHolder(self.replica if holder is None else holder)
        return ApprovalWatcher(self.store, self.client.background, self.notifier(), router, lease=lease, **options)

    async def lease_holder_gone(self, holder: str) -> bool:
        return await self.liveness.lease_holder_gone(holder)

    async def close(self) -> None:
        await self.client.aclose()
        await self.store.close()
        session = getattr(self.web, "session", None)
        if session is not None:
            await session.close()


async def build_runtime(
    settings: Settings,
    *,
    client: CodeStreamClient | None = None,
    access: AccessPolicy | None = None,
    retry: RetryPolicy | None = None,
    slack_retry: SlackRetry | None = None,
) -> Runtime:
    redact.add_secrets(secret_values(settings))  # every log line, from here on, hides them
    # Everything that can be wrong in the configuration is found before anything is opened.
    file_config = load_file_config(settings.bot_config)
    parse_access_config(file_config.access)
    foreground = Foreground()
    web = _slack_client(settings, foreground, slack_retry)
    identity = SlackIdentity(web) if web is not None else None
    if access is None:
        access = _policy(settings, file_config, web, identity)
    made_client = client is None
    try:
        if client is None:
            client = build_codestream_client(settings, retry=retry, observer=metrics.observe_codestream)
            client.auth.on_login = lambda auth: metrics.TOKEN_REFRESHES.labels(auth).inc()
            client.before_each_request(foreground.wait_turn)
        store = await open_store(settings.bot_database_url)
        store.before_each_transaction(foreground.wait_turn)
    except BaseException:
        # Nothing opened so far is left open: the error reaches the operator alone.
        if made_client and client is not None:
            await client.aclose()
        if web is not None and web.session is not None:
            await web.session.close()
        raise
    lifecycle = Lifecycle(
        store,
        post_budget_seconds=4 * settings.codestream_timeout,
        reconcile_seconds=settings.bot_reconcile_seconds,
    )
    target = EventTarget(client, lifecycle, dedupe_seconds=settings.bot_dedupe_seconds)
    actions = EventPerformer(target, settings.execution_ui_url, access)
    runtime = Runtime(settings, client, store, actions, access, web, file_config, foreground)
    runtime.identity = identity
    return runtime


def _slack_client(settings: Settings, foreground: Foreground, retry: SlackRetry | None) -> AsyncWebClient | None:
    """The one Slack Web API client, when Slack is configured; its calls wait their turn."""
    if not settings.slack_configured:
        return None
    assert settings.slack_bot_token is not None
    return build_web_client(
        settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        before_request=foreground.wait_turn,
        retry=retry or SlackRetry(),
    )


def _policy(
    settings: Settings, file_config: FileConfig, web: AsyncWebClient | None, identity: SlackIdentity | None
) -> AccessPolicy:
    """The access policy: BOT_CONFIG's rules and the BOT_ALLOWED_* shortcuts, behind the
    workspace gate when Slack is configured."""
    access = build_policy(
        file_config.access,
        allowed_users=settings.bot_allowed_users,
        allowed_usergroups=settings.bot_allowed_usergroups,
        allowed_channels=settings.bot_allowed_channels,
        groups=SlackGroupDirectory(web) if web is not None else None,
    )
    if identity is None:
        return access
    return WorkspaceGate(access, allowed=frozenset(split_ids(settings.bot_allowed_teams)), own_team=identity.team_id)
