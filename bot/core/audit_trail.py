"""The audit trail as one person may read it: only the rows about what they may see."""

from __future__ import annotations

from dataclasses import dataclass

from bot.codestream.models import as_kind
from bot.core import audit
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.audit import AuditQuery
from bot.store import ActionRecord, Store


@dataclass(frozen=True)
class AuditTrail:
    store: Store
    access: AccessPolicy

    async def page(self, viewer: Viewer, query: AuditQuery) -> tuple[list[ActionRecord], bool]:
        """One page of the rows ``viewer`` may see, newest first, and whether there are more."""

        async def visible(row: ActionRecord) -> bool:
            # Rows on executions and approvals have no event kind: rules limited to kinds do not
            # show them; project and pipeline rules do.
            return await self.access.may_see(viewer, Scope(as_kind(row.kind), row.project, row.pipeline))

        return await audit.fetch(self.store, query, visible=visible)
