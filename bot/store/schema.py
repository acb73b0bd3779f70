"""What the tables and the records of every feature share.

All tables live in one ``MetaData`` without a schema. A PostgreSQL schema, when one is
configured, is applied at execution time through ``schema_translate_map`` so that SQLite and
PostgreSQL share every statement. Each feature module (``bot.store.mutes``...) defines its
tables on this ``metadata`` and its records on :class:`Record`. Importing ``bot.store`` imports
every feature module (``bot.store.store`` composes them all), so the metadata holds every table
before any database is created or repaired.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import BigInteger, Column, DateTime, Dialect, Integer, MetaData, Table
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Stored in ``alerts.execution_index`` when an alert has no execution (a trigger failure):
#: the column is NOT NULL so that the unique key (kind, event_id, execution_index) also holds
#: for "no execution". Real execution indexes are >= 0.
NO_EXECUTION_INDEX = -1


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    Binding a naive datetime is an error. PostgreSQL stores ``timestamptz``; SQLite stores the
    naive UTC wall time in SQLAlchemy's fixed-width text format (so text comparison is time
    comparison). Results are always aware and in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(DateTime(timezone=False))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store needs timezone-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BIGINT on PostgreSQL; INTEGER on SQLite so the column is the rowid (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()


def table(name: str, *items: SchemaItem) -> Table:
    """A table of the store's layout: on :data:`metadata`, so that a fresh database gets it and
    ``repair_layout`` creates it where it is missing."""
    return Table(name, metadata, *items)


def id_column() -> Column[int]:
    """The surrogate key of a table whose rows the store numbers itself (``_add_row`` returns it)."""
    return Column("id", BigId, primary_key=True, autoincrement=True)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: An aware datetime (naive ones are rejected), converted to UTC.
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Record(BaseModel):
    """A row of the store as the rest of the bot sees it: unknown fields are refused, and
    assignments are validated like construction."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
