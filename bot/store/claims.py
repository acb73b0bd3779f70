"""Claims: "the first caller for a key wins, for a while" (dedupe windows, in-flight actions).

A claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`` statement, so it
is atomic across coroutines, engines and processes on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import JSON, Column, Executable, Row, Text, bindparam, delete, select, update

from bot.store.base import Bound, Database, Part, dialect_insert, seconds
from bot.store.conn import Conn
from bot.store.schema import UTCDateTime, table

claims = table(
    "claims",
    Column("key", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Claim:
    """The current owner of a claim key. ``won`` is True only for the caller that created it."""

    key: str
    holder: str
    won: bool
    claimed_at: datetime
    expires_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


# A claim can vanish (released) between our failed insert and the read-back; then try again.
CLAIM_ATTEMPTS = 5


_MINE = (claims.c.key == bindparam("w_key"), claims.c.holder == bindparam("w_holder"))
_UPDATE_MINE = update(claims).where(*_MINE)
_DELETE_MINE = delete(claims).where(*_MINE)
_BY_KEY = select(claims).where(claims.c.key == bindparam("w_key"))


def claim_data_stmt(key: str, holder: str, data: dict[str, Any]) -> Bound:
    """Replace the data of ``holder``'s claim on ``key``."""
    return _UPDATE_MINE, {"w_key": key, "w_holder": holder, "data": data}


def release_stmt(key: str, holder: str) -> Bound:
    """Drop ``holder``'s claim on ``key``."""
    return _DELETE_MINE, {"w_key": key, "w_holder": holder}


def settle_stmt(key: str, holder: str, expires: datetime) -> Bound:
    """Let ``holder``'s claim on ``key`` lapse at ``expires``."""
    return _UPDATE_MINE, {"w_key": key, "w_holder": holder, "expires_at": expires}


@cache
def _upsert(dialect: str) -> Executable:
    """Insert the claim, or take over an expired one (``w_now``): the row back if it did."""
    ins = dialect_insert(dialect, claims)
    return ins.on_conflict_do_update(
        index_elements=[claims.c.key],
        set_={
            "holder": ins.excluded.holder,
            "claimed_at": ins.excluded.claimed_at,
            "expires_at": ins.excluded.expires_at,
            "data": ins.excluded.data,
        },
        where=claims.c.expires_at <= bindparam("w_now", type_=UTCDateTime()),
    ).returning(*claims.c)


def _claim(row: Row[Any], won: bool) -> Claim:
    return Claim(row.key, row.holder, won, row.claimed_at, row.expires_at, dict(row.data or {}))


def _held(row: Row[Any]) -> Claim:
    """A claim read back (not won by this call)."""
    return _claim(row, False)


async def try_claim(
    db: Database, conn: Conn, key: str, holder: str, span: timedelta, data: dict[str, Any]
) -> tuple[Row[Any] | None, bool]:
    """One claim attempt in the write transaction ``conn``: the claim row (ours if we won,
    else the current winner's; None when it vanished meanwhile: try again) and whether we won."""
    now = db.now()
    values = {"key": key, "holder": holder, "claimed_at": now, "expires_at": now + span, "data": data, "w_now": now}
    row = (await conn.execute(_upsert(db.dialect), values)).first()
    if row is not None:
        return row, True
    return (await conn.execute(_BY_KEY, {"w_key": key})).first(), False


class Claims(Part):
    async def claim(self, key: str, holder: str, window: float, data: dict[str, Any] | None = None) -> Claim:
        """The first caller for ``key`` within ``window`` seconds wins (``won=True``); everyone
        else gets the current winner's claim (``won=False``), including a repeat call by the
        same holder. Once the claim expires the next caller wins and replaces it.
        Holders should be unique per attempt (e.g. a request id)."""
        span = seconds(window, "window")
        for _ in range(CLAIM_ATTEMPTS):
            async with self._write() as conn:
                row, won = await try_claim(self._db, conn, key, holder, span, data or {})
            if row is not None:
                return _claim(row, won)
        raise RuntimeError(f"claim {key!r}: could not settle after {CLAIM_ATTEMPTS} attempts")

    async def get(self, key: str) -> Claim | None:
        """The unexpired claim on ``key`` (``won=False``), if any."""
        async with self._read() as conn:
            row = (
                await conn.execute(select(claims).where(claims.c.key == key, claims.c.expires_at > self._now()))
            ).first()
        return None if row is None else _held(row)

    async def update_data(self, key: str, holder: str, data: dict[str, Any]) -> bool:
        """Replace the claim's data if ``holder`` still owns it. Returns whether it did."""
        return await self._changed(claim_data_stmt(key, holder, data)) > 0

    async def release(self, key: str, holder: str) -> bool:
        """Drop the claim if ``holder`` owns it, so the next caller wins at once."""
        return await self._changed(release_stmt(key, holder)) > 0

    async def settle(self, key: str, holder: str, window: float) -> bool:
        """The action behind the claim has ended: keep the claim ``window`` more seconds (the
        dedupe window) from now, then let it lapse. Returns whether ``holder`` still owned it."""
        expires = self._now() + seconds(window, "window")
        return await self._changed(settle_stmt(key, holder, expires)) > 0

    async def in_flight(self, prefix: str, *, claimed_before: datetime, expiring_after: datetime) -> list[Claim]:
        """Claims on keys starting with ``prefix``, taken before ``claimed_before`` and still
        held past ``expiring_after`` (that is: in flight, not in their dedupe window)."""
        query = (
            select(claims)
            .where(
                claims.c.key.startswith(prefix, autoescape=True),
                claims.c.claimed_at < claimed_before,
                claims.c.expires_at > expiring_after,
            )
            .limit(500)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_held(r) for r in rows]

    async def purge_expired(self, older_than: float = 0.0) -> int:
        """Delete claims that expired more than ``older_than`` seconds ago. Returns the count."""
        cutoff = self._now() - timedelta(seconds=older_than)
        return await self._changed(delete(claims).where(claims.c.expires_at <= cutoff))
