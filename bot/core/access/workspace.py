"""The workspace gate, in front of any policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.codestream.models import Event
from bot.core.access.grants import Grants
from bot.core.access.policy import AccessPolicy
from bot.core.access.rules import Scope, Viewer
from bot.core.errors import AccessDenied
from bot.core.requests import ActionRequest
from bot.core.verbs import AccessAction


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

    async def _require_team(self, team_id: str | None) -> None:
        ok = await self._team_ok(team_id)
        if ok is None:
            raise AccessDenied("The bot could not confirm its own Slack workspace right now; try again in a minute.")
        if not ok:
            raise AccessDenied(
                "This bot only serves people of its own Slack workspace; your workspace is not allowed "
                "(an operator can add it to BOT_ALLOWED_TEAMS)."
            )

    async def precheck(self, request: ActionRequest) -> None:
        await self._require_team(request.team_id)
        await self.inner.precheck(request)

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        await self.precheck(request)
        await self.inner.check(request, event)

    async def check_action(self, action: AccessAction, viewer: Viewer, scope: Scope) -> None:
        await self._require_team(viewer.team_id)
        await self.inner.check_action(action, viewer, scope)

    async def may_see(self, viewer: Viewer, scope: Scope) -> bool:
        return bool(await self._team_ok(viewer.team_id)) and await self.inner.may_see(viewer, scope)

    async def grants(self, viewer: Viewer) -> Grants:
        ok = await self._team_ok(viewer.team_id)
        if ok is None:
            return Grants(refused="The bot could not confirm its own Slack workspace right now; try again in a minute.")
        if not ok:
            return Grants(refused="This bot only serves people of its own Slack workspace; yours is not allowed.")
        return await self.inner.grants(viewer)

    def describe(self) -> list[str]:
        teams = ", ".join(sorted(self.allowed)) if self.allowed else "the bot's own workspace"
        return [*self.inner.describe(), f"workspaces: only people of {teams}"]
