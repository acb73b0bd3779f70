"""Intents: an action's claim and its audit row, written together.

An action on an event starts with three writes (win the intent's claim, record the pending
audit row, note the row's id in the claim for the losers to read) and ends with two (close the
row, settle or release the claim). Each group is one transaction here: all of it or none of it,
and one commit instead of several.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from bot.store.actions import ActionRecord, actions, record_values, update_open_stmt
from bot.store.base import Part, inserting_id, seconds, validated_changes
from bot.store.claims import CLAIM_ATTEMPTS, Claim, claim_data_stmt, release_stmt, settle_stmt, try_claim


class Intents(Part):
    """``store.intents``: the claim and the audit row of an action, in one transaction each time."""

    async def claim(
        self, key: str, holder: str, window: float, data: dict[str, Any], record: ActionRecord
    ) -> tuple[Claim, int | None]:
        """``store.claims.claim(key, holder, window, data)`` and, when won, in the same
        transaction: the audit row ``record`` (pending) and the claim's data with its
        ``action_id``. Returns the claim and the row's id (None when lost: then nothing else is
        written). If it fails, nothing is written at all."""
        span = seconds(window, "window")
        for _ in range(CLAIM_ATTEMPTS):
            action_id: int | None = None
            async with self._write() as conn:
                row, won = await try_claim(self._db, conn, key, holder, span, data)
                if won:
                    inserted = await conn.execute(inserting_id(actions), record_values(record))
                    action_id = int(inserted.scalar_one())
                    data = {**data, "action_id": action_id}
                    await conn.execute(*claim_data_stmt(key, holder, data))
            if row is not None:
                claim_data = data if won else dict(row.data or {})
                return Claim(row.key, row.holder, won, row.claimed_at, row.expires_at, claim_data), action_id
        raise RuntimeError(f"claim {key!r}: could not settle after {CLAIM_ATTEMPTS} attempts")

    async def finish(
        self,
        key: str,
        holder: str,
        action_id: int,
        owner: str,
        changes: dict[str, Any],
        *,
        settle_for: float | None,
    ) -> bool:
        """In one transaction: ``store.actions.update_open(action_id, owner, **changes)`` (the
        known outcome), and ``holder``'s claim on ``key`` settled for ``settle_for`` more
        seconds (the dedupe window), or released when it is None. The claim ends whether or not the row
        was still open (it may have been taken over meanwhile). Returns whether the row was."""
        close = update_open_stmt(action_id, owner, changes)
        end = (
            release_stmt(key, holder)
            if settle_for is None
            else settle_stmt(key, holder, self._now() + seconds(settle_for, "window"))
        )
        async with self._write() as conn:
            closed = (await conn.execute(*close)).rowcount > 0
            await conn.execute(*end)
        return closed

    async def drop_unsent(self, key: str, holder: str, action_id: int, owner: str, changes: dict[str, Any]) -> bool:
        """In one transaction, only while the row still says ``claimed`` (nothing was sent):
        close it with ``changes`` and release ``holder``'s claim on ``key``. False, and nothing
        written, once the row moved on (``pending``: the call may have left) or was settled."""
        return await self._drop(key, holder, action_id, owner, changes, ("claimed",))

    async def drop_never_sent(self, key: str, holder: str, action_id: int, owner: str, changes: dict[str, Any]) -> bool:
        """``drop_unsent`` for an intent whose claim the caller never saw won (the transaction
        committed, its answer was lost): nothing can have been sent for it, so its row closes
        whether it says ``claimed`` or ``pending``. False once it was settled or taken over."""
        return await self._drop(key, holder, action_id, owner, changes, ("claimed", "pending"))

    async def _drop(
        self, key: str, holder: str, action_id: int, owner: str, changes: dict[str, Any], statuses: tuple[str, ...]
    ) -> bool:
        values = validated_changes(ActionRecord, changes, {"id", "created_at"})
        close = (
            update(actions)
            .where(
                actions.c.id == action_id,
                actions.c.owner == owner,
                actions.c.status.in_(statuses),
                actions.c.finished_at.is_(None),
            )
            .values(**values)
        )
        async with self._write() as conn:
            if (await conn.execute(close)).rowcount == 0:
                return False
            await conn.execute(*release_stmt(key, holder))
        return True
