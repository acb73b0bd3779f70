"""The policies: everyone (no rules), or rules with specific denials that never tell someone who
may not see an event anything about it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from bot.codestream.models import Event
from bot.core.access.grants import Grant, Grants
from bot.core.access.rules import ALL_ACTIONS, Rule, Scope, Viewer, parse_access_config, rules_from_env
from bot.core.errors import AccessDenied
from bot.core.requests import ActionRequest
from bot.core.verbs import SHOW, VERBS, AccessAction

log = logging.getLogger("bot.core.access")

NO_POLICY_WARNING: Final = (
    "No access policy is set: EVERYONE in the Slack workspace may rerun and resume events and run pipelines. "
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


class AllowEveryone:
    """No policy configured: everyone in the workspace may act."""

    configured = False

    async def precheck(self, request: ActionRequest) -> None:
        return None

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        return None

    async def check_action(self, action: AccessAction, viewer: Viewer, scope: Scope) -> None:
        return None

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return True

    async def grants(self, viewer: Viewer) -> Grants:
        return Grants(here=(Grant(ALL_ACTIONS),), policy=False)

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

    async def check_action(self, action: AccessAction, viewer: Viewer, scope: Scope) -> None:
        """Like ``check``, for an action that is not a request on an event (``mute``): raise
        AccessDenied (naming nothing to someone who may not see ``scope``) unless allowed."""

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        """Whether the policy's ``show`` rules let ``viewer`` see this event (or audit row); a
        failed group lookup is a no."""

    async def grants(self, viewer: Viewer) -> Grants:
        """Everything ``viewer`` may do in their channel, and what only elsewhere."""

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
        if reason is not None and await self._denial(SHOW, viewer, scope, any_event=True) is not None:
            raise AccessDenied(_private_denial(request.verb, reason))

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        scope = Scope.of(request.kind, event)
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        reason = await self._denial(request.verb, viewer, scope)
        if reason is None:
            return
        if not VERBS[request.verb].mutates or not await self.may_see(viewer, scope):
            # Whoever may not see the event learns nothing of it, not even its project.
            raise AccessDenied(_private_denial(request.verb, reason))
        raise AccessDenied(reason.message(request.verb, scope))

    async def check_action(self, action: AccessAction, viewer: Viewer, scope: Scope) -> None:
        reason = await self._denial(action, viewer, scope)
        if reason is None:
            return
        if not await self.may_see(viewer, scope):
            raise AccessDenied(_private_denial(action, reason, scope))
        raise AccessDenied(reason.message(action, scope))

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return await self._denial(SHOW, viewer, scope) is None

    async def _denial(
        self, verb: AccessAction, viewer: Viewer, scope: Scope, *, any_event: bool = False
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

    async def grants(self, viewer: Viewer) -> Grants:
        here: list[Grant] = []
        elsewhere: list[tuple[str, Grant]] = []
        unchecked: list[str] = []
        for index, rule in enumerate(self.rules):
            if not await self._names(rule, viewer.user_id, unchecked):
                continue
            grant = Grant(
                tuple(rule.actions), tuple(rule.kinds), tuple(rule.projects), tuple(rule.pipelines), rule=index
            )
            if not rule.channels or viewer.channel_id in rule.channels:
                here.append(grant)
            else:
                elsewhere += [(channel, grant) for channel in rule.channels]
        return Grants(
            here=tuple(here),
            elsewhere=tuple(sorted(elsewhere, key=lambda item: (item[0], item[1].rule or 0))),
            unchecked_groups=tuple(sorted({self._handle(g) for g in unchecked})),
        )

    async def _names(self, rule: Rule, user_id: str, unchecked: list[str]) -> bool:
        """Whether ``rule`` names this person (a rule naming nobody names everyone)."""
        if not rule.names_people() or user_id in rule.users:
            return True
        for group in rule.usergroups:
            try:
                if self.groups is not None and await self.groups.is_member(group, user_id):
                    return True
            except GroupLookupFailed:
                unchecked.append(group)
        return False

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

    def message(self, verb: AccessAction, scope: Scope) -> str:
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


def _private_denial(verb: AccessAction, denial: _Denial, scope: Scope | None = None) -> str:
    if denial.why == "lookup":
        return denial.message(verb, Scope("git"))
    # An execution or an approval is "that", not "this event".
    on_event = verb not in ("cancel", "pause", "approve", "run") and (scope is None or scope.kind is not None)
    what = "this event" if on_event else "that"
    if verb == SHOW:
        return f"The access policy does not let you see {what} here."
    return f"The access policy does not let you {verb} {what} here."


def _what(verb: AccessAction, scope: Scope) -> str:
    target = f"{scope.project} pipelines" if scope.project else f"{scope.kind or 'any'} events"
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
    rules = (
        rules_from_env(allowed_users, allowed_usergroups, allowed_channels) + parse_access_config(access_section).rules
    )
    if not rules:
        log.warning(NO_POLICY_WARNING)
        return AllowEveryone()
    return RulePolicy(rules, groups)
