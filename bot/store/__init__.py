"""State store: claims, actions, alerts, digests, followups, leases, cursors, mutes, subscriptions
and approvals, each a part of :class:`Store` reached by attribute (``store.mutes.active(now)``).

SQLite (``sqlite+aiosqlite:///path.db``) is the embedded default; PostgreSQL
(``postgresql+asyncpg://...``) when several replicas run. Same code for both.
"""

from __future__ import annotations

from typing import Any

from bot.store.actions import ActionRecord
from bot.store.alerts import AlertRecord
from bot.store.approvals import ApprovalRecord
from bot.store.claims import Claim
from bot.store.digests import DigestRecord, DigestRow
from bot.store.engine import make_engine, normalize_url, prepare_sqlite
from bot.store.errors import SchemaLayoutError, SchemaVersionError, StoreError, database_unreachable
from bot.store.followups import FollowupRecord
from bot.store.migrate import upgrade
from bot.store.mutes import MuteRecord
from bot.store.schema import NO_EXECUTION_INDEX, utcnow
from bot.store.store import Clock, Store
from bot.store.subscriptions import SubscriptionFilters, SubscriptionRecord
from bot.store.tables import latest_version
from bot.store.undelivered import UndeliveredAlert

__all__ = [
    "NO_EXECUTION_INDEX",
    "ActionRecord",
    "AlertRecord",
    "ApprovalRecord",
    "Claim",
    "Clock",
    "DigestRecord",
    "DigestRow",
    "FollowupRecord",
    "MuteRecord",
    "SchemaLayoutError",
    "SchemaVersionError",
    "Store",
    "StoreError",
    "SubscriptionFilters",
    "SubscriptionRecord",
    "UndeliveredAlert",
    "database_unreachable",
    "latest_version",
    "make_engine",
    "normalize_url",
    "open_store",
    "upgrade",
]


async def open_store(url: str, *, schema: str | None = None, clock: Clock | None = None, **engine_kwargs: Any) -> Store:
    """Create the engine, create or upgrade the tables, and return the :class:`Store`.

    ``schema`` is a PostgreSQL schema (created if missing) that holds every table; SQLite
    ignores it. ``clock`` returns the aware "now" (tests pass a controllable one); without one,
    a store on PostgreSQL follows the database's clock (``Store.sync_clock``): replicas whose
    clocks disagree decide leases, claims and dedupe windows on one clock.
    ``engine_kwargs`` go to ``create_async_engine`` (e.g. ``pool_size``).
    """
    await prepare_sqlite(url)
    engine = make_engine(url, schema=schema, **engine_kwargs)
    store = Store(engine, clock=clock or utcnow, database_clock=clock is None)
    try:
        await store.sync_clock()
        await upgrade(engine, schema=schema, now=store.now())
    except BaseException:
        await engine.dispose()
        raise
    return store
