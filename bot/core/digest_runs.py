"""**Rerun all failed** on a storm digest: which digest a message is, one "Rerun all" per digest
at a time on any replica, and the rows it takes (those nobody acted on, or whose action left them
broken). Each row is then performed like any other (``Actions.perform``: access, one intent per
event, audit)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from bot.codestream.models import EventKind, as_kind
from bot.core.batch_hold import batch_hold
from bot.core.digests import SAVE_WAIT, DigestBoard, RowState, still_failing
from bot.store import DigestRecord, Store

#: A row to rerun: its event, and the run the digest lists (acted on only while it is the latest).
Target = tuple[EventKind, str, int | None]


@dataclass(frozen=True)
class DigestRuns:
    store: Store
    board: DigestBoard

    async def find(self, channel: str, ts: str) -> DigestRecord | None:
        """The digest posted as ``ts`` (given the moment its record takes to be saved); raises
        when the store cannot say."""
        return await self.board.at(channel, ts, wait=SAVE_WAIT)

    def rerun_all(self, digest_id: int, user_id: str) -> AbstractAsyncContextManager[str | None]:
        """Hold this digest's "Rerun all" for the block: yields None when this caller holds it
        (released after), else who holds it ("" when that is not known)."""
        return batch_hold(self.store, f"digest-all:{digest_id}", user_id)

    async def still_failing(self, digest_id: int) -> list[Target]:
        """The digest's rows "Rerun all" takes, in the digest's order."""
        read = await self.store.digests.get(digest_id)
        rows = [r for r in read[1] if still_failing(RowState.read(r.state))] if read is not None else []
        targets: list[Target] = []
        for row in rows:
            kind = as_kind(row.kind)
            if kind is not None:
                targets.append((kind, row.event_id, row.execution_index))
        return targets
