"""Table definitions, the UTC timestamp type, and schema versioning.

All tables live in one ``MetaData`` without a schema. A PostgreSQL schema, when one is
configured, is applied at execution time through ``schema_translate_map`` so that SQLite and
PostgreSQL share every statement.

Schema versioning: ``schema_version`` holds one row (``id = 1``) with the applied version.
A fresh database gets ``metadata.create_all`` (the current layout) and is stamped with
``LATEST_VERSION``. An existing database runs every migration newer than its stamp, in
order. To change the layout later: edit the ``Table`` below (so fresh databases get it) *and*
append a ``Migration`` that brings an existing database to the same shape (e.g. ``ALTER TABLE
... ADD COLUMN``). A database stamped newer than this code is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
    inspect,
)
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

from bot.store.errors import SchemaLayoutError

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

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="schema_version_single_row"),
)

claims = Table(
    "claims",
    metadata,
    Column("key", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False),
)

actions = Table(
    "actions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("actor_name", Text),
    Column("surface", Text, nullable=False),
    Column("channel_id", Text),
    Column("status", Text, nullable=False),
    Column("execution_link", Text),
    Column("execution_id", Text),
    Column("error", Text),
    Column("error_class", Text),
    Column("duplicate_of", BigId),
    Column("request_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # v2, the intent lifecycle: what a reconciler (this replica's, or another's after a crash)
    # needs to finish an action whose outcome is not known yet (status pending / unknown).
    Column("owner", Text),  # the replica finishing it
    Column("before_execution_index", Integer),  # the event as read before the POST
    Column("before_execution_link", Text),
    Column("settle_by", UTCDateTime),  # no new execution by then: it did not run
    Column("next_check_at", UTCDateTime),  # the next read-back
    Column("summary_channel", Text),  # the answer to update in place
    Column("summary_ts", Text),
    Column("alert_channel", Text),  # the alert the action came from
    Column("alert_ts", Text),
    Column("alert_thread_ts", Text),
    Column("project", Text),  # the event's, so that reading the audit trail follows the access policy
    Column("pipeline", Text),
    Index("ix_actions_created_at", "created_at"),
    Index("ix_actions_event_id", "event_id", "created_at"),
    Index("ix_actions_actor_id", "actor_id", "created_at"),
    Index("ix_actions_alert", "alert_channel", "alert_ts"),  # v3: acted from this alert?
    Index("ix_actions_status", "status"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer, nullable=False),  # NO_EXECUTION_INDEX for "none"
    Column("channel_id", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("thread_ts", Text),
    Column("created_at", UTCDateTime, nullable=False),
    # v3: repeated failures. ``series`` is "kind:project:pipeline:branch"; a top-level alert of a
    # series counts the failures threaded under it (``repeats``) until a fix resolves it.
    Column("series", Text),
    Column("repeats", Integer, nullable=False, server_default="0"),
    Column("resolved_at", UTCDateTime),
    Column("mention", Text),  # the route's mention the alert was posted with, kept when redrawn
    Column("author", Text),  # the Slack user mentioned as the one who pushed
    UniqueConstraint("kind", "event_id", "execution_index", name="uq_alerts_event_execution"),
    Index("ix_alerts_message", "channel_id", "ts"),
    Index("ix_alerts_thread", "channel_id", "thread_ts"),
    Index("ix_alerts_series", "series", "created_at"),
)

followups = Table(
    "followups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("action_id", BigId),
    Column("channel_id", Text, nullable=False),
    Column("summary_ts", Text, nullable=False),
    Column("alert_channel_id", Text),
    Column("alert_ts", Text),
    Column("actor_id", Text),
    Column("status", Text, nullable=False),
    Column("next_poll_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("interval", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # The last cancel/pause/resume from Slack on the followed execution: its summary says who.
    Column("control_verb", Text),
    Column("control_by", Text),
    Column("control_at", UTCDateTime),
    Index("ix_followups_due", "finished_at", "next_poll_at"),
    Index("ix_followups_execution", "execution_id"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# v2: every running replica's heartbeat, so that work a dead replica left (intents in flight) is
# taken over by a live one without waiting for a long timeout.
replicas = Table(
    "replicas",
    metadata,
    Column("holder", Text, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# v2: alerts Slack refused for good (the bot is not in the channel, it was archived...): kept and
# retried with backoff for a bounded time while the watcher's cursor moves on.
undelivered_alerts = Table(
    "undelivered_alerts",
    metadata,
    Column("key", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer),
    Column("channel_id", Text, nullable=False),
    Column("thread_ts", Text),
    Column("mention", Text),
    Column("reason", Text, nullable=False),
    Column("tries", Integer, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("next_try_at", UTCDateTime, nullable=False),
    Column("give_up_at", UTCDateTime, nullable=False),
    Index("ix_undelivered_due", "next_try_at"),
)

mutes = Table(
    "mutes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("scope", Text, nullable=False),  # "pipeline" (kind, project, pipeline) or "branch" (kind, repo, branch)
    Column("kind", Text, nullable=False),
    Column("project", Text),
    Column("pipeline", Text),
    Column("repo", Text),
    Column("branch", Text),
    Column("until", UTCDateTime, nullable=False),  # it ends by itself then (at the latest)
    Column("until_pass", Boolean, nullable=False, server_default=false()),  # ...or when a run passes
    Column("event_id", Text),  # the event it was muted from (for the audit trail)
    Column("muted_by", Text, nullable=False),
    Column("channel_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("ended_by", Text),  # a user id, "expired" is not stored (until says it), or "passed"
    Column("suppressed", Integer, nullable=False, server_default="0"),  # failures not alerted
    Index("ix_mutes_open", "ended_at"),
)

# v5: storms. A digest is one message listing many failures of one channel; each row is also an
# alert (``alerts.ts`` is the digest's ts), so "already alerted", the audit trail and the
# follow-through find it like any alert. ``version`` counts changes, ``drawn`` the one Slack shows.
digests = Table(
    "digests",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel_id", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),  # the newest row's arrival
    Column("version", Integer, nullable=False, server_default="1"),
    Column("drawn", Integer, nullable=False, server_default="1"),
    Column("mention", Text),  # the routes' mentions it was posted with, kept when redrawn
    Column("closed_at", UTCDateTime),  # takes no more failures (Slack refused to redraw it)
    UniqueConstraint("channel_id", "ts", name="uq_digests_message"),
    Index("ix_digests_channel", "channel_id", "updated_at"),
)

digest_rows = Table(
    "digest_rows",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("digest_id", BigId, nullable=False),
    Column("kind", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("execution_index", Integer, nullable=False),  # NO_EXECUTION_INDEX for "none"
    Column("facts", JSON, nullable=False),  # what the row shows: the event as read, why it failed
    Column("state", JSON),  # what happened to it since (an action and its outcome); None: nothing
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("digest_id", "kind", "event_id", name="uq_digest_rows_event"),
)

# v6: alert routes a channel added itself (``/codestream subscribe``), evaluated after BOT_CONFIG's
# routes. A removed one is kept (removed_at/removed_by) for the record; the audit trail has both.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel_id", Text, nullable=False),  # where matching failures are alerted
    Column("kind", Text),  # git | gerrit | docker | approval; NULL: any
    Column("project", Text),  # exact; NULL: any
    Column("pipeline", Text),  # glob
    Column("repo", Text),  # glob
    Column("branch", Text),  # glob
    Column("mention", Text),  # <!subteam^S…> or <@U…>
    Column("created_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Column("removed_by", Text),
    Index("ix_subscriptions_channel", "channel_id", "removed_at"),
)

# v7: Code Stream approvals (user operations) the bot posted a request for.
approvals = Table(
    "approvals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("operation_id", Text, nullable=False),  # the Code Stream user operation
    Column("channel_id", Text),  # where its request is posted (None until it is)
    Column("ts", Text),
    Column("status", Text, nullable=False),  # what the message shows: ACTIVE, APPROVED, REJECTED, EXPIRED, CANCELED
    Column("project", Text),
    Column("pipeline", Text),
    Column("execution_id", Text),
    Column("decided_by", Text),  # a Slack user id (decided in Slack) or Code Stream's respondedBy
    Column("decided_in", Text),  # "slack" or "codestream"
    Column("response_message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),  # set once the operation is no longer pending
    UniqueConstraint("operation_id", name="uq_approvals_operation"),
    Index("ix_approvals_open", "finished_at"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """Brings a database from ``version - 1`` to ``version`` (runs inside the upgrade transaction)."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def add_column(conn: Connection, column: Column[Any]) -> None:
    """Migration helper: ``ALTER TABLE <table> ADD COLUMN <column>`` for a column of one of the
    tables above (honours the PostgreSQL schema). New columns must be nullable or have a
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
]


def repair_layout(conn: Connection) -> list[str]:
    """Create what the tables above have and the database lacks (tables, nullable or defaulted
    columns, indexes), whatever its version says: a database stamped by a commit whose migration
    was edited later lacks some. Returns what it created; SchemaLayoutError names what it
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
