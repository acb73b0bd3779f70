"""Access rules as configured: ``access.rules`` in BOT_CONFIG and the BOT_ALLOWED_* shortcuts,
and what they are matched against (a Scope, a Viewer)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.codestream.models import Event, EventKind
from bot.core.verbs import VERBS, AccessAction, Verb
from bot.errors import ConfigError

# A rule without ``actions`` allows every verb, read-only first (as ``check`` shows them). The
# actions that are not verbs (``mute``: silencing alerts; ``subscribe``: routing alerts to a
# channel) are granted only by naming them.
ALL_VERBS: Final[tuple[Verb, ...]] = tuple(sorted(VERBS, key=lambda verb: VERBS[verb].mutates))
#: Every access action, the verbs first: read from ``AccessAction`` itself, so a new one is named once.
ALL_ACTIONS: Final[tuple[AccessAction, ...]] = (
    *ALL_VERBS,
    *(action for action in get_args(AccessAction) if action not in ALL_VERBS),
)


@dataclass(frozen=True)
class Scope:
    """What rules are matched against: an event, or an audit row that remembers its event's
    project and pipeline."""

    kind: EventKind | None  # None: an execution not known to come from an event (cancel, pause)
    project: str | None = None
    pipeline: str | None = None
    # The pipeline is a subscription's pattern (literal text and ``*``), standing for every name
    # it matches: a rule allows it only if it allows each of those names.
    pipeline_is_pattern: bool = False

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
    actions: list[AccessAction] = Field(default_factory=lambda: list[AccessAction](ALL_VERBS))
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

    def may_apply(self, verb: AccessAction, kind: EventKind | None) -> bool:
        """Could this rule speak about this action on some event of this kind?"""
        return verb in self.actions and (not self.kinds or kind in self.kinds)

    def in_scope(self, verb: AccessAction, scope: Scope) -> bool:
        """Does this rule speak about this action on this event (regardless of who/where)?"""
        if verb not in self.actions or (self.kinds and scope.kind not in self.kinds):
            return False
        pipelines = _covers if scope.pipeline_is_pattern else _matches
        return _matches(self.projects, scope.project) and pipelines(self.pipelines, scope.pipeline)

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


def _covers(patterns: Sequence[str], pattern: str | None) -> bool:
    """Whether every name ``pattern`` (literal text and ``*``) matches is matched by one of
    ``patterns``. Against a rule pattern of literal text and ``*`` only, the rule matching the
    pattern's own text, its ``*`` taken by the rule's ``*``, decides it exactly. A rule pattern
    with ``?`` or a class (``[!x]*``) can match the ``*`` character itself, so it covers only a
    pattern without ``*`` (a single name): refusing is the safe answer."""
    if not patterns:
        return True
    if pattern is None:
        return False
    if "*" not in pattern:
        return _matches(patterns, pattern)
    return any(not ({"?", "["} & set(p)) and fnmatch.fnmatchcase(pattern, p) for p in patterns)


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
