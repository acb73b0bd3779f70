"""The schema's migrations: what brings a database stamped with an older version to the layout
the feature modules define.

A fresh database gets ``metadata.create_all`` (the current layout, every feature module's
tables) and is stamped with the latest version (``bot.store.migrate``). An existing database
runs every migration newer than its stamp, in order, then ``repair_layout``. To change the
layout later: edit the ``Table`` in its feature module (so fresh databases get it) *and* append
a ``Migration`` here that brings an existing database to the same shape (e.g. ``add_column``).
A committed migration is never edited: databases stamped by it exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, inspect
from sqlalchemy.schema import CreateColumn

from bot.store.actions import actions
from bot.store.alerts import alerts
from bot.store.approvals import approvals
from bot.store.digests import digest_rows, digests
from bot.store.errors import SchemaLayoutError
from bot.store.followups import followups
from bot.store.liveness import replicas
from bot.store.mutes import mutes
from bot.store.schema import metadata
from bot.store.subscriptions import subscriptions
from bot.store.undelivered import undelivered_alerts


@dataclass(frozen=True)
class Migration:
    """Brings a database from ``version - 1`` to ``version`` (runs inside the upgrade transaction)."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def add_column(conn: Connection, column: Column[Any]) -> None:
    """Migration helper: ``ALTER TABLE <table> ADD COLUMN <column>`` for a column of one of the
    store's tables (honours the PostgreSQL schema). New columns must be nullable or have a
    ``server_default`` so existing rows stay valid."""
    table = column.table
    schema = conn.schema_for_object(table)
    if column.name in {c["name"] for c in inspect(conn).get_columns(table.name, schema=schema)}:
        return  # a database stamped older than its layout (an edited migration): already there
    preparer = conn.dialect.identifier_preparer
    name = preparer.quote(table.name)
    if schema:
        name = f"{preparer.quote_schema(schema)}.{name}"
    spec = CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {spec}")


def _initial(conn: Connection) -> None:
    metadata.create_all(conn)


_V2_ACTION_COLUMNS = (
    "owner",
    "before_execution_index",
    "before_execution_link",
    "settle_by",
    "next_check_at",
    "summary_channel",
    "summary_ts",
    "alert_channel",
    "alert_ts",
    "alert_thread_ts",
    "project",
    "pipeline",
)


def _intent_lifecycle(conn: Connection) -> None:
    for name in _V2_ACTION_COLUMNS:
        add_column(conn, actions.c[name])
    next(i for i in actions.indexes if i.name == "ix_actions_status").create(conn, checkfirst=True)
    replicas.create(conn, checkfirst=True)
    undelivered_alerts.create(conn, checkfirst=True)


def _alert_series(conn: Connection) -> None:
    for name in ("series", "repeats", "resolved_at", "mention", "author"):
        add_column(conn, alerts.c[name])
    next(i for i in alerts.indexes if i.name == "ix_alerts_series").create(conn, checkfirst=True)
    next(i for i in actions.indexes if i.name == "ix_actions_alert").create(conn, checkfirst=True)


def _mutes(conn: Connection) -> None:
    mutes.create(conn, checkfirst=True)


def _digests(conn: Connection) -> None:
    digests.create(conn, checkfirst=True)
    digest_rows.create(conn, checkfirst=True)


def _subscriptions(conn: Connection) -> None:
    subscriptions.create(conn, checkfirst=True)


def _execution_control_and_approvals(conn: Connection) -> None:
    for name in ("control_verb", "control_by", "control_at"):
        add_column(conn, followups.c[name])
    approvals.create(conn, checkfirst=True)


def _action_detail(conn: Connection) -> None:
    add_column(conn, actions.c["detail"])


MIGRATIONS: list[Migration] = [
    Migration(1, "initial tables", _initial),
    Migration(
        2,
        "intent lifecycle: reconciliation columns on actions, replica heartbeats, undelivered alerts",
        _intent_lifecycle,
    ),
    Migration(3, "repeated failures: alert series, repeat counts, resolution", _alert_series),
    Migration(4, "mutes", _mutes),
    Migration(5, "storm digests", _digests),
    Migration(6, "subscriptions: alert routes channels add themselves", _subscriptions),
    Migration(
        7,
        "execution control (who canceled, paused or resumed a followed execution) and approvals",
        _execution_control_and_approvals,
    ),
    Migration(8, "pipeline runs: the action's detail (the pipeline and its inputs, secrets masked)", _action_detail),
]


def repair_layout(conn: Connection) -> list[str]:
    """Create what the store's tables (all of ``metadata``) have and the database lacks (tables,
    nullable or defaulted columns, indexes), whatever its version says: a database stamped by a
    commit whose migration was edited later lacks some. Returns what it created; SchemaLayoutError names what it
    cannot (a missing NOT NULL column without a default)."""
    found = inspect(conn)
    created: list[str] = []
    impossible: list[str] = []
    for table in metadata.sorted_tables:
        schema = conn.schema_for_object(table)
        if not found.has_table(table.name, schema=schema):
            table.create(conn)
            created.append(table.name)
            continue
        present = {c["name"] for c in found.get_columns(table.name, schema=schema)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                impossible.append(f"{table.name}.{column.name}")
                continue
            add_column(conn, column)
            created.append(f"{table.name}.{column.name}")
        indexed = {i["name"] for i in found.get_indexes(table.name, schema=schema)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(conn)
                created.append(str(index.name))
    if impossible:
        raise SchemaLayoutError(
            "the database lacks columns this version needs and cannot add on its own: "
            f"{', '.join(impossible)}; restore a backup taken by a released version, or add them by hand"
        )
    return created


def latest_version(migrations: list[Migration] | None = None) -> int:
    return max(m.version for m in (MIGRATIONS if migrations is None else migrations))
