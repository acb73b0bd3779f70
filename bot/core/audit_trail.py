"""The audit trail as one person may read it: only the rows about what they may see."""

from __future__ import annotations

from bot.codestream.models import as_kind
from bot.core import audit
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.audit import AuditQuery
from bot.store import ActionRecord, Store


class AuditTrail:
    def __init__(self, store: Store, access: AccessPolicy) -> None:
        self._store = store
        self._access = access

    async def page(self, viewer: Viewer, query: AuditQuery) -> tuple[list[ActionRecord], bool]:
        """One page of the rows ``viewer`` may see, newest first, and whether there are more."""

        async def visible(row: ActionRecord) -> bool:
            # Rows on executions and approvals have no event kind: rules limited to kinds do not
            # show them; project and pipeline rules do.
            return await self._access.may_see(viewer, Scope(as_kind(row.kind), row.project, row.pipeline))

        return await audit.fetch(self._store, query, visible=visible)
