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
from collections.abc import Sequence
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.codestream.models import Event, EventKind
from bot.config import ConfigError
from bot.errors import AccessDenied
from bot.intents import ActionRequest, Verb

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

    def in_scope(self, verb: Verb, kind: EventKind, event: Event | None) -> bool:
        """Does this rule speak about this action on this event (regardless of who/where)?"""
        if verb not in self.actions or (self.kinds and kind not in self.kinds):
            return False
        project = event.project if event else None
        pipeline = event.pipeline if event else None
        return _matches(self.projects, project) and _matches(self.pipelines, pipeline)

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


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def rules_from_env(users: str | None, usergroups: str | None, channels: str | None) -> list[Rule]:
    """The env shortcuts make one rule: these people (any of them), in these channels."""
    if not (_split(users) or _split(usergroups) or _split(channels)):
        return []
    return [
        Rule(
            users=_split(users),
            usergroups=_split(usergroups),
            channels=_split(channels),
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

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        return None

    def describe(self) -> list[str]:
        return [NO_POLICY_WARNING]


class AccessPolicy(Protocol):
    configured: bool

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        """Return if allowed; raise AccessDenied with a specific message if not."""

    def describe(self) -> list[str]: ...


class RulePolicy:
    """Allowed when at least one rule allows it; otherwise denied with the most useful reason."""

    configured = True

    def __init__(self, rules: list[Rule], groups: GroupDirectory | None) -> None:
        self.rules = rules
        self.groups = groups

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        scoped = [r for r in self.rules if r.in_scope(request.verb, request.kind, event)]
        if not scoped:
            raise AccessDenied(f"No access rule allows {_what(request, event)}.")
        in_channel = [r for r in scoped if not r.channels or request.channel_id in r.channels]
        if not in_channel:
            where = ", ".join(f"<#{c}>" for c in sorted({c for r in scoped for c in r.channels}))
            what = _what(request, event)
            raise AccessDenied(f"{what[:1].upper()}{what[1:]} is only allowed in {where}.")
        lookup_failed: list[str] = []
        for rule in in_channel:
            if not rule.names_people() or request.actor.user_id in rule.users:
                return
            for group in rule.usergroups:
                try:
                    if self.groups is not None and await self.groups.is_member(group, request.actor.user_id):
                        return
                except GroupLookupFailed:
                    lookup_failed.append(group)
        who = self._who(in_channel)
        if lookup_failed:
            groups = ", ".join(self._handle(g) for g in lookup_failed)
            raise AccessDenied(
                f"The bot could not check your membership of {groups} right now, so it cannot let you "
                f"{request.verb} this; try again in a minute."
            )
        raise AccessDenied(f"You are not {who}, which may {_what(request, event)}.")

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


def _what(request: ActionRequest, event: Event | None) -> str:
    verb: Literal["show", "rerun", "resume"] = request.verb
    target = f"{event.project} pipelines" if event is not None and event.project else f"{request.kind} events"
    if event is not None and event.pipeline:
        target = f"{target} ({event.pipeline})"
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
