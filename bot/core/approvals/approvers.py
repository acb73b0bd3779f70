"""Who may decide an approval: the policy's ``approve`` action on the approval's project and
pipeline, AND (by default) only a person the operation lists — their Slack e-mail in
``approvers``, or their membership of a Slack user group that BOT_CONFIG's ``approver_groups``
maps one of its ``approverGroups`` to. Code Stream's own check still applies: a 403 is shown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.codestream.user_operations import UserOperation
from bot.core.access import AccessPolicy, AllowEveryone, GroupDirectory, GroupLookupFailed, Scope, Viewer
from bot.core.approvals.requests import DecisionRequest, NotAnApprover
from bot.core.errors import AccessDenied


@dataclass
class Approvers:
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default
    groups: GroupDirectory | None = None
    approver_groups: Mapping[str, str] = field(default_factory=dict)  # Code Stream group -> Slack S…
    listed_only: bool = True  # only the operation's approvers (and mapped groups) may decide

    async def refusal(self, request: DecisionRequest, operation: UserOperation) -> AccessDenied | None:
        """Why this person may not decide this operation (None: they may)."""
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        try:
            await self.access.check_action("approve", viewer, Scope(None, operation.project, operation.pipeline))
        except AccessDenied as denied:
            return denied
        if not self.listed_only:
            return None
        email = (request.email or "").strip().lower()
        if email and email in {a.strip().lower() for a in operation.approvers}:
            return None
        unchecked: list[str] = []
        for name in operation.approver_groups:
            group = self.approver_groups.get(name)
            if group is None or self.groups is None:
                continue
            try:
                if await self.groups.is_member(group, request.actor.user_id):
                    return None
            except GroupLookupFailed:
                unchecked.append(self.groups.handle(group))
        if unchecked:
            return NotAnApprover(
                f"The bot could not check your membership of {', '.join(unchecked)} right now; try again in a minute."
            )
        return _not_listed(operation, email)


def _not_listed(operation: UserOperation, email: str) -> NotAnApprover:
    listed = ", ".join([*operation.approvers, *operation.approver_groups]) or "nobody"
    if not email:
        return NotAnApprover(
            "The bot cannot read your Slack e-mail address, so it cannot match you with this approval's "
            f"approvers ({listed}); decide in Code Stream."
        )
    return NotAnApprover(f"This approval is for {listed}; your Slack e-mail ({email}) is not among them.")
