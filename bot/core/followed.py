"""What the follow-through knows of an execution the bot follows, for those who act on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.codestream.models import EventKind, as_kind
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowedExecutions:
    store: Store

    async def kind_of(self, execution_id: str) -> EventKind | None:
        """The kind of event whose run this followed execution is; None when the bot does not
        follow it, or the store cannot say (logged)."""
        try:
            record = await self.store.followups.open_for_execution(execution_id)
        except Exception:
            log.exception("followup lookup failed")
            return None
        return as_kind(record.kind) if record is not None else None
