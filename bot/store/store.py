"""The state store: one code path for SQLite and PostgreSQL (SQLAlchemy 2 Core, async).

Claims and leases are single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``
statements, so they are atomic across coroutines, engines and processes on both backends.
"now" always comes from the store's clock (Python side) and is compared in the database.

:class:`Store` holds one part per kind of state, each defined in its own module with its
table(s) and record type(s), and reached by attribute: ``store.mutes.active(now)``. The store
itself keeps only what concerns the whole: the clock, the engine, the health check, the
before-transaction hook, closing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.actions import Actions
from bot.store.alerts import Alerts
from bot.store.approvals import Approvals
from bot.store.base import Clock, Database, Hook
from bot.store.claims import Claims
from bot.store.cursors import Cursors
from bot.store.digests import Digests
from bot.store.followups import Followups
from bot.store.intents import Intents
from bot.store.liveness import HolderGone, Liveness
from bot.store.mutes import Mutes
from bot.store.schema import utcnow
from bot.store.subscriptions import Subscriptions
from bot.store.undelivered import Undelivered

__all__ = ["Clock", "HolderGone", "Store"]


#: A clock sample whose query took longer than this is not used (its error is half of it).
MAX_CLOCK_SAMPLE: Final = timedelta(milliseconds=500)


class Store:
    """State shared by the bot's replicas. Create with :func:`bot.store.open_store`."""

    claims: Final[Claims]  # "the first caller for a key wins, for a while"
    actions: Final[Actions]  # the audit trail, and the actions a replica must finish
    intents: Final[Intents]  # an action's claim and audit row, written together
    alerts: Final[Alerts]  # alerts posted to Slack, by event and by series
    undelivered: Final[Undelivered]  # alerts Slack refused, retried
    digests: Final[Digests]  # storm digests: many failures in one message
    followups: Final[Followups]  # executions followed to their end
    liveness: Final[Liveness]  # leases and replica heartbeats
    cursors: Final[Cursors]  # where a replica picks up another's work
    mutes: Final[Mutes]  # failures counted but not alerted
    subscriptions: Final[Subscriptions]  # alert routes channels added themselves
    approvals: Final[Approvals]  # approval requests posted, and how they ended

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utcnow, database_clock: bool = False) -> None:
        """``database_clock``: follow the database's clock (PostgreSQL only; see ``sync_clock``)."""
        self._db = db = Database(engine, clock)
        self.follows_database_clock = database_clock and db.dialect == "postgresql"
        self.claims = Claims(db)
        self.actions = Actions(db)
        self.intents = Intents(db)
        self.alerts = Alerts(db)
        self.undelivered = Undelivered(db)
        self.digests = Digests(db)
        self.followups = Followups(db)
        self.liveness = Liveness(db)
        self.cursors = Cursors(db)
        self.mutes = Mutes(db)
        self.subscriptions = Subscriptions(db)
        self.approvals = Approvals(db)

    @property
    def engine(self) -> AsyncEngine:
        return self._db.engine

    @property
    def statement_engine(self) -> Engine:
        """The engine whose events see every statement the parts run."""
        return self._db.statement_engine

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def now(self) -> datetime:
        return self._db.now()

    def before_each_transaction(self, hook: Hook) -> None:
        """Await ``hook`` before each connection is taken from the pool (once per transaction or
        read, before any lock is held), in every part: the bot's acks-first turn
        (``bot.core.foreground``)."""
        self._db.before = hook

    async def sync_clock(self) -> timedelta | None:
        """Follow the database's clock (PostgreSQL, when the store was opened to): measure the
        offset of the process's clock to ``clock_timestamp()``, halfway through the round trip.
        Returns the offset, or None when this store keeps its own clock."""
        if not self.follows_database_clock:
            return None
        async with self._db.read() as conn:  # the wait for a connection is not measured
            before = self._db.now() - self._db.offset
            result = await conn.execute(text("SELECT clock_timestamp()"))
            after = self._db.now() - self._db.offset
            database_now = result.scalar_one()
        if after - before > MAX_CLOCK_SAMPLE:
            return self._db.offset  # too slow an answer to tell the clocks apart: keep the last
        self._db.offset = database_now - (before + (after - before) / 2)
        return self._db.offset

    async def ping(self) -> None:
        async with self._db.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._db.inline is not None:
            self._db.inline.dispose()
        await self._db.engine.dispose()
