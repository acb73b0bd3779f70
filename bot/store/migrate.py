"""Creating or upgrading a database's schema: the version stamp and the upgrade that runs the
migrations (``bot.store.tables``) once, whichever replica opens the database first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Connection, Integer, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateSchema

from bot.store.engine import write_options
from bot.store.errors import SchemaVersionError
from bot.store.schema import UTCDateTime, metadata, table
from bot.store.tables import MIGRATIONS, Migration, repair_layout

log = logging.getLogger(__name__)

#: pg_advisory_xact_lock key serialising concurrent schema upgrades ("csbot" + 1).
_PG_UPGRADE_LOCK = 0x6373626F7401

#: One row (``id = 1``): the version of the layout the database has.
schema_version = table(
    "schema_version",
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="schema_version_single_row"),
)


def _upgrade(conn: Connection, schema: str | None, migrations: Sequence[Migration], now: datetime) -> int:
    """Create or upgrade the tables; returns the resulting version. Runs in one transaction."""
    # SQLite: the connection began with BEGIN IMMEDIATE (write_options), so concurrent openers
    # serialise instead of racing.
    if conn.dialect.name != "sqlite":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK})
        if schema:
            conn.execute(CreateSchema(schema, if_not_exists=True))
    ordered = sorted(migrations, key=lambda m: m.version)
    latest = ordered[-1].version
    metadata.create_all(conn, tables=[schema_version])
    current = conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    if current is None:
        # Fresh database: the current layout, stamped with the latest version.
        metadata.create_all(conn)
        conn.execute(insert(schema_version).values(id=1, version=latest, updated_at=now))
        return latest
    if current > latest:
        raise SchemaVersionError(f"database schema version {current} is newer than this code supports ({latest})")
    for migration in ordered:
        if migration.version > current:
            migration.apply(conn)
    # The version alone is not trusted: a database stamped by a commit whose migration was edited
    # later lacks tables or columns its number promises.
    created = repair_layout(conn)
    if created:
        log.warning("the database lacked parts of its layout; created them", extra={"repaired": ", ".join(created)})
    if latest != current:
        conn.execute(update(schema_version).where(schema_version.c.id == 1).values(version=latest, updated_at=now))
    return latest


async def upgrade(
    engine: AsyncEngine,
    *,
    schema: str | None = None,
    now: datetime,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Create the tables on a fresh database, or apply pending migrations. Idempotent and safe
    to run from several processes at once. Returns the schema version."""
    if engine.dialect.name == "sqlite":
        schema = None
    async with engine.execution_options(**write_options(engine.dialect.name)).connect() as conn:
        version = await conn.run_sync(_upgrade, schema, list(MIGRATIONS if migrations is None else migrations), now)
        await conn.commit()
    return version
