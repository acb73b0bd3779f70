"""The Slack stand-in's directory: who is in the team, and which channels it has.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there. Synchronous and
free of HTTP, like the rest of the workspace model (`slack_workspace`).
"""

from __future__ import annotations

import time

from bot.simulator.slack_models import JSON, SlackError


class SlackDirectory:
    """Users, usergroups and channels of one team (direct messages open on first use)."""

    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.users: dict[str, JSON] = {}
        self.usergroups: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str | None = None,
        *,
        display_name: str | None = None,
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        team_id: str | None = None,
    ) -> JSON:
        """``team_id``: another workspace's, for a Slack Connect guest."""
        real = real_name or name
        self.users[user_id] = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": real,
            "deleted": deleted,
            "is_bot": is_bot,
            "tz": "Etc/UTC",
            "profile": {
                "display_name": display_name if display_name is not None else name,
                "real_name": real,
                "email": email or f"{name}@example.com",
            },
        }
        return self.users[user_id]

    def add_usergroup(self, group_id: str, handle: str, users: list[str], name: str | None = None) -> JSON:
        self.usergroups[group_id] = {
            "id": group_id,
            "team_id": self.team_id,
            "handle": handle,
            "name": name or handle,
            "users": list(users),
            "user_count": len(users),
        }
        return self.usergroups[group_id]

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> JSON:
        self.channels[channel_id] = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_private": is_private,
            "is_member": True,
            "is_archived": False,
            "created": int(time.time()),
        }
        return self.channels[channel_id]

    def resolve_channel(self, value: str) -> str:
        """A channel id from an id, a name ("cs-alerts" / "#cs-alerts") or a user id (DM)."""
        if value in self.channels:
            return value
        name = value.lstrip("#")
        for cid, info in self.channels.items():
            if info["name"] == name:
                return cid
        if value in self.users:  # posting to a user id opens the DM
            dm = "D" + value[1:]
            self.channels.setdefault(
                dm,
                {
                    "id": dm,
                    "name": dm,
                    "is_channel": False,
                    "is_group": False,
                    "is_im": True,
                    "is_private": True,
                    "is_member": True,
                    "user": value,
                    "created": int(time.time()),
                },
            )
            return dm
        raise SlackError("channel_not_found")
