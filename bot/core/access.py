"""Who may do what, where.

``perform`` asks the policy before anything reaches Code Stream, so one check guards every
surface (slash command, button, thread reply, mention). Rules come from the ``access:`` section
of the ``BOT_CONFIG`` file and, for simple cases, from ``BOT_ALLOWED_USERS``,
``BOT_ALLOWED_USERGROUPS`` and ``BOT_ALLOWED_CHANNELS``.

With no rules at all everyone may act (and start-up and ``check`` warn). With rules, anything
not allowed by some rule is denied — including when a user-group lookup fails (fail closed).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.app.settings import ConfigError
from bot.codestream.models import Event, EventKind
from bot.core.errors import AccessDenied
from bot.core.requests import ActionRequest, Verb

log = logging.getLogger(__name__)

ALL_VERBS: Final[tuple[Verb, ...]] = ("show", "rerun", "resume")
NO_POLICY_WARNING: Final = (
    "No access policy is set: EVERYONE in the Slack workspace may rerun and resume pipelines. "
    "Set BOT_ALLOWED_USERS / BOT_ALLOWED_USERGROUPS / BOT_ALLOWED_CHANNELS or access rules in BOT_CONFIG."
)


class GroupLookupFailed(Exception):
    """The user-group directory could not answer (Slack down, missing scope...)."""


class GroupDirectory(Protocol):
    """User-group membership (Slack's ``usergroups.users.list``), kept out of the core."""

    async def is_member(self, group_id: str, user_id: str) -> bool:
        """Raise GroupLookupFailed when membership cannot be determined."""

    def handle(self, group_id: str) -> str:
        """A readable name for messages, e.g. ``@release-managers``."""


@dataclass(frozen=True)
class Scope:
    """What rules are matched against: an event, or an audit row that remembers its event's
    project and pipeline."""

    kind: EventKind
    project: str | None = None
    pipeline: str | None = None

    @classmethod
    def of(cls, kind: EventKind, event: Event | None) -> Scope:
        return cls(kind, event.project if event else None, event.pipeline if event else None)


@dataclass(frozen=True)
class Viewer:
    """Who asks to read, and where."""

    user_id: str
    channel_id: str | None
    team_id: str | None = None


class Rule(BaseModel):
    """One ``allow`` rule: every condition that is set must hold."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(default_factory=list)  # Slack user ids (U…/W…)
    usergroups: list[str] = Field(default_factory=list)  # Slack user-group ids (S…)
    channels: list[str] = Field(default_factory=list)  # channel ids where actions are allowed
    actions: list[Verb] = Field(default_factory=lambda: list(ALL_VERBS))
    kinds: list[EventKind] = Field(default_factory=list)
    projects: list[str] = Field(default_factory=list)  # exact or glob
    pipelines: list[str] = Field(default_factory=list)  # exact or glob

    @field_validator("users")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        return _ids(value, ("U", "W"), "Slack user ids such as U012AB3CD")

    @field_validator("usergroups")
    @classmethod
    def _group_ids(cls, value: list[str]) -> list[str]:
        return _ids(value, ("S",), "Slack user-group ids such as S0123RELEASE")

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, value: list[str]) -> list[str]:
        return _ids(value, ("C", "G", "D"), "channel ids such as C012AB3CD")

    def may_apply(self, verb: Verb, kind: EventKind) -> bool:
        """Could this rule speak about this action on some event of this kind?"""
        return verb in self.actions and (not self.kinds or kind in self.kinds)

    def in_scope(self, verb: Verb, scope: Scope) -> bool:
        """Does this rule speak about this action on this event (regardless of who/where)?"""
        if verb not in self.actions or (self.kinds and scope.kind not in self.kinds):
            return False
        return _matches(self.projects, scope.project) and _matches(self.pipelines, scope.pipeline)

    def names_people(self) -> bool:
        return bool(self.users or self.usergroups)


class AccessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)


def _ids(values: list[str], prefixes: tuple[str, ...], what: str) -> list[str]:
    cleaned = [v.strip() for v in values]
    for value in cleaned:
        if not value or value[0] not in prefixes or not value.isalnum() or value.upper() != value:
            raise ValueError(f"must be {what} (got {value!r})")
    return cleaned


def _matches(patterns: Sequence[str], value: str | None) -> bool:
    if not patterns:
        return True
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


def split_ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def rules_from_env(users: str | None, usergroups: str | None, channels: str | None) -> list[Rule]:
    """The env shortcuts make one rule: these people (any of them), in these channels."""
    if not (split_ids(users) or split_ids(usergroups) or split_ids(channels)):
        return []
    return [
        Rule(
            users=split_ids(users),
            usergroups=split_ids(usergroups),
            channels=split_ids(channels),
        )
    ]


def parse_access_config(section: Any) -> AccessConfig:
    """Validate the ``access:`` section; raise ConfigError with one line per problem."""
    if section is None:
        return AccessConfig()
    try:
        return AccessConfig.model_validate(section)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = "access." + ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error["loc"])
            where = where.replace(".[", "[")
            lines.append(f"BOT_CONFIG {where}: {str(error['msg']).removeprefix('Value error, ')}")
        raise ConfigError(lines) from None


class AllowEveryone:
    """No policy configured: everyone in the workspace may act."""

    configured = False

    async def precheck(self, request: ActionRequest) -> None:
        return None

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        return None

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return True

    def describe(self) -> list[str]:
        return [NO_POLICY_WARNING]


class AccessPolicy(Protocol):
    configured: bool

    async def precheck(self, request: ActionRequest) -> None:
        """Before the event is read: raise AccessDenied (naming nothing) when no rule could
        allow this person this verb here, whatever the event's project and pipeline."""

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        """Return if allowed; raise AccessDenied with a specific message if not. A denial names
        the event's project and pipeline only to someone the policy lets see the event."""

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        """Whether the policy's ``show`` rules let ``viewer`` see this event (or audit row); a
        failed group lookup is a no."""

    def describe(self) -> list[str]: ...


class RulePolicy:
    """Allowed when at least one rule allows it; otherwise denied with the most useful reason."""

    configured = True

    def __init__(self, rules: list[Rule], groups: GroupDirectory | None) -> None:
        self.rules = rules
        self.groups = groups

    async def precheck(self, request: ActionRequest) -> None:
        """Someone no rule lets see or do anything with events of this kind here is refused
        before the event is read (learning nothing, not even whether it exists). Everyone
        else gets the full check, whose message depends on what they may see."""
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        scope = Scope(request.kind)
        reason = await self._denial(request.verb, viewer, scope, any_event=True)
        if reason is not None and await self._denial("show", viewer, scope, any_event=True) is not None:
            raise AccessDenied(_private_denial(request.verb, reason))

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        scope = Scope.of(request.kind, event)
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        reason = await self._denial(request.verb, viewer, scope)
        if reason is None:
            return
        if request.verb == "show" or not await self.may_see(viewer, scope):
            # Whoever may not see the event learns nothing of it, not even its project.
            raise AccessDenied(_private_denial(request.verb, reason))
        raise AccessDenied(reason.message(request.verb, scope))

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return await self._denial("show", viewer, scope) is None

    async def _denial(
        self, verb: Verb, viewer: Viewer, scope: Scope, *, any_event: bool = False
    ) -> _Denial | None:
        """Why ``viewer`` may not ``verb`` events in ``scope`` (None: allowed). ``any_event``:
        rules count whatever projects and pipelines they name (the event is not read yet)."""
        if any_event:
            scoped = [r for r in self.rules if r.may_apply(verb, scope.kind)]
        else:
            scoped = [r for r in self.rules if r.in_scope(verb, scope)]
        if not scoped:
            return _Denial("no-rule")
        in_channel = [r for r in scoped if not r.channels or viewer.channel_id in r.channels]
        if not in_channel:
            return _Denial("channel", channels=sorted({c for r in scoped for c in r.channels}))
        lookup_failed: list[str] = []
        for rule in in_channel:
            if not rule.names_people() or viewer.user_id in rule.users:
                return None
            for group in rule.usergroups:
                try:
                    if self.groups is not None and await self.groups.is_member(group, viewer.user_id):
                        return None
                except GroupLookupFailed:
                    lookup_failed.append(group)
        if lookup_failed:
            return _Denial("lookup", groups=[self._handle(g) for g in lookup_failed])
        return _Denial("person", who=self._who(in_channel))

    def _handle(self, group: str) -> str:
        return self.groups.handle(group) if self.groups is not None else group

    def _who(self, rules: list[Rule]) -> str:
        groups = sorted({self._handle(g) for r in rules for g in r.usergroups})
        users = sorted({f"<@{u}>" for r in rules for u in r.users})
        return " or ".join([*(f"in {g}" for g in groups), *users])

    def describe(self) -> list[str]:
        lines = []
        for index, rule in enumerate(self.rules):
            who = ", ".join([*rule.users, *rule.usergroups]) or "anyone"
            where = ", ".join(rule.channels) or "any channel"
            scope = []
            if rule.kinds:
                scope.append("kinds " + ", ".join(rule.kinds))
            if rule.projects:
                scope.append("projects " + ", ".join(rule.projects))
            if rule.pipelines:
                scope.append("pipelines " + ", ".join(rule.pipelines))
            lines.append(
                f"rule {index}: {who} may {'/'.join(rule.actions)} in {where}"
                + (f" ({'; '.join(scope)})" if scope else "")
            )
        return lines


@dataclass(frozen=True)
class _Denial:
    why: Literal["no-rule", "channel", "lookup", "person"]
    channels: list[str] | None = None
    groups: list[str] | None = None
    who: str = ""

    def message(self, verb: Verb, scope: Scope) -> str:
        what = _what(verb, scope)
        if self.why == "no-rule":
            return f"No access rule allows {what}."
        if self.why == "channel":
            where = ", ".join(f"<#{c}>" for c in self.channels or [])
            return f"{what[:1].upper()}{what[1:]} is only allowed in {where}."
        if self.why == "lookup":
            return (
                f"The bot could not check your membership of {', '.join(self.groups or [])} right now, so it cannot "
                f"let you {verb} this; try again in a minute."
            )
        return f"You are not {self.who}, which may {what}."


def _private_denial(verb: Verb, denial: _Denial) -> str:
    if denial.why == "lookup":
        return denial.message(verb, Scope("git"))
    if verb == "show":
        return "The access policy does not let you see this event here."
    return f"The access policy does not let you {verb} this event here."


class WorkspaceGate:
    """Only people of the allowed Slack workspaces may use the bot at all, whatever the rules
    say: by default the bot's own workspace, so Slack Connect guests from other organisations
    are refused even where a rule names only channels."""

    def __init__(
        self,
        inner: AccessPolicy,
        *,
        allowed: frozenset[str],
        own_team: Callable[[], Awaitable[str | None]] | None,
    ) -> None:
        self.inner = inner
        self.allowed = allowed
        self.own_team = own_team
        self.configured = inner.configured

    async def _team_ok(self, team_id: str | None) -> bool | None:
        """True/False; None when the bot cannot tell (its own team is unknown right now)."""
        allowed = set(self.allowed)
        if not allowed:
            own = await self.own_team() if self.own_team is not None else None
            if own is None:
                return None
            allowed.add(own)
        return team_id is not None and team_id in allowed

    async def precheck(self, request: ActionRequest) -> None:
        ok = await self._team_ok(request.team_id)
        if ok is None:
            raise AccessDenied("The bot could not confirm its own Slack workspace right now; try again in a minute.")
        if not ok:
            raise AccessDenied(
                "This bot only serves people of its own Slack workspace; your workspace is not allowed "
                "(an operator can add it to BOT_ALLOWED_TEAMS)."
            )
        await self.inner.precheck(request)

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        await self.precheck(request)
        await self.inner.check(request, event)

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return bool(await self._team_ok(viewer.team_id)) and await self.inner.may_see(viewer, scope)

    def describe(self) -> list[str]:
        teams = ", ".join(sorted(self.allowed)) if self.allowed else "the bot's own workspace"
        return [*self.inner.describe(), f"workspaces: only people of {teams}"]


def _what(verb: Verb, scope: Scope) -> str:
    target = f"{scope.project} pipelines" if scope.project else f"{scope.kind} events"
    if scope.pipeline:
        target = f"{target} ({scope.pipeline})"
    return f"{verb} {target}"


def build_policy(
    access_section: Any,
    *,
    allowed_users: str | None,
    allowed_usergroups: str | None,
    allowed_channels: str | None,
    groups: GroupDirectory | None,
) -> AllowEveryone | RulePolicy:
    rules = rules_from_env(allowed_users, allowed_usergroups, allowed_channels) + parse_access_config(
        access_section
    ).rules
    if not rules:
        log.warning(NO_POLICY_WARNING)
        return AllowEveryone()
    return RulePolicy(rules, groups)
