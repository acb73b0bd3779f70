"""Who may do what, where. ``perform`` asks the policy before anything reaches Code Stream, so
one check guards every surface (slash command, button, thread reply, mention).

This module holds the seam; the rules engine fills it (see the access-control issue).
"""

from __future__ import annotations

from typing import Protocol

from bot.codestream.models import Event
from bot.intents import ActionRequest


class AccessPolicy(Protocol):
    async def check(self, request: ActionRequest, event: Event | None) -> None:
        """Return if allowed; raise ``bot.errors.AccessDenied`` with a specific message if not."""


class AllowEveryone:
    """The default when no policy is configured: everyone in the workspace may act."""

    configured = False

    async def check(self, request: ActionRequest, event: Event | None) -> None:
        return None
