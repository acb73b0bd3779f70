"""Upgrades keep data: databases written by release 0.1's own code (tests/data/v0.1, made by
running that release's store against SQLite and PostgreSQL) open, upgrade in place, and keep
their audit trail; what 0.1 left open is settled without a POST."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.codestream.client import CodeStreamClient
from bot.core.ports import LoggedOutcomes
from bot.simulator import CodeStreamSimulator
from bot.store import ApprovalRecord, FollowupRecord, Store, latest_version, open_store
from bot.store.approvals import approvals
from bot.store.followups import followups
from bot.store.migrate import schema_version
from tests.builders import reconciler as build_reconciler
from tests.conftest import Backend

DATA = Path(__file__).resolve().parents[1] / "data" / "v0.1"
V01_STATUSES = ["duplicate", "pending", "denied", "failed", "started"]  # newest first


@pytest.fixture
async def v01_store(backend: Backend) -> AsyncIterator[Store]:
    """The 0.1 database, restored into the test's fresh one: the SQLite file copied over it, or
    the PostgreSQL dump loaded into its schema."""
    async with restored(backend, DATA, "csbot_v01") as store:
        yield store


@asynccontextmanager
async def restored(backend: Backend, data: Path, dumped_schema: str) -> AsyncIterator[Store]:
    """``data``'s database restored into the test's fresh one (the SQLite file copied over it, or
    the PostgreSQL dump of ``dumped_schema`` loaded into its schema), opened by the current code."""
    if backend.schema is None:
        path = make_url(backend.url).database
        assert path is not None
        shutil.copy(data / "bot.db", path)
    else:
        admin = await asyncpg.connect(backend.url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await admin.execute((data / "postgres.sql").read_text().replace(dumped_schema, backend.schema))
        finally:
            await admin.close()
    store = await open_store(backend.url, schema=backend.schema)
    try:
        yield store
    finally:
        await store.close()


async def test_a_v01_database_upgrades_in_place_and_keeps_its_audit_trail(v01_store: Store) -> None:
    store = v01_store
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(schema_version.c.version))).scalar_one() == latest_version()
    rows = await store.actions.list()
    assert [r.status for r in rows] == V01_STATUSES
    assert {(r.actor_id, r.actor_name, r.channel_id) for r in rows} == {("U0ALICE", "alice", "C0ALERTS")}
    assert all(r.owner is None and r.summary_ts is None for r in rows)  # the new columns, empty
    started = rows[-1]
    assert started.execution_id == "e1" and started.finished_at is not None
    alert = await store.alerts.latest_for_event("git", "7f3a1b2c-0000-4000-8000-000000000000")
    assert alert is not None and alert.ts == "1700000000.000100" and alert.execution_index == 3
    assert (alert.series, alert.repeats, alert.resolved_at) == (None, 0, None)  # v3's columns, empty
    assert await store.alerts.count_repeat(alert.id or 0) == 1  # and usable
    assert await store.cursors.get("watcher:git") == "{}"
    followup = await store.followups.get(1)
    assert followup is not None and followup.action_id == started.id
    # It works as a current database: a heartbeat, a new row, the open-actions query.
    await store.liveness.heartbeat("host:1:x:1")
    assert [r.status for r in await store.actions.open()] == ["pending"]


async def test_a_pending_row_left_by_v01_is_settled_as_unknown_without_a_post(
    v01_store: Store, client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    reconciler = build_reconciler(v01_store, client, LoggedOutcomes(), owner="host:1:x:1")
    assert await reconciler.round() == 1  # written in 2026-11, long "stuck" by now
    [row] = [r for r in await v01_store.actions.list() if r.request_id == "req3"]
    assert row.status == "unknown" and row.error_class == "OutcomeUnconfirmed" and row.finished_at is not None
    assert sim.count("POST", "/codestream/api/") == 0
    assert await v01_store.actions.open() == []


async def test_a_database_at_v3_gets_the_mutes_table(tmp_path: Path) -> None:
    """Schema v3 (repeated failures) was written before mutes existed: v4 adds them."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'v3.db'}"
    store = await open_store(url)
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE mutes")
        await conn.execute(schema_version.update().values(version=3))
    await store.close()
    store = await open_store(url)
    try:
        assert await store.mutes.active(store.now()) == []
        async with store.engine.connect() as conn:
            assert (await conn.execute(select(schema_version.c.version))).scalar_one() == latest_version()
    finally:
        await store.close()


async def test_a_v4_database_gets_execution_control_and_approvals_and_keeps_its_followups(backend: Backend) -> None:
    """Schema v4 (before #14) has no control_* columns on followups and no approvals table: the
    upgrade adds them in place, on SQLite and PostgreSQL, and the followups being polled carry on."""
    store = await open_store(backend.url, schema=backend.schema)
    now = store.now()
    record = FollowupRecord(
        execution_id="e-v4",
        kind="git",
        event_id="ev-v4",
        channel_id="C0ALERTS",
        summary_ts="1.2",
        next_poll_at=now,
        deadline_at=now + timedelta(hours=6),
        created_at=now,
    )
    try:
        fid = await store.followups.add(record)
        async with store.engine.begin() as conn:  # back to the v4 layout, as v4's code left it
            preparer = conn.dialect.identifier_preparer
            table = preparer.quote(followups.name)
            if backend.schema is not None:
                table = f"{preparer.quote_schema(backend.schema)}.{table}"
            for column in ("control_verb", "control_by", "control_at"):
                await conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
            await conn.run_sync(lambda sync: approvals.drop(sync))
            await conn.execute(schema_version.update().values(version=4))
    finally:
        await store.close()
    store = await open_store(backend.url, schema=backend.schema)
    try:
        async with store.engine.connect() as conn:
            assert (await conn.execute(select(schema_version.c.version))).scalar_one() == latest_version()
        kept = await store.followups.get(fid)
        assert kept is not None and (kept.execution_id, kept.summary_ts, kept.control_verb) == ("e-v4", "1.2", None)
        assert await store.followups.update(fid, control_verb="cancel", control_by="U0ALICE", control_at=now)
        followed = await store.followups.open_for_execution("e-v4")
        assert followed is not None and (followed.control_verb, followed.control_by) == ("cancel", "U0ALICE")
        # ...and the approvals table: one row per operation.
        first = await store.approvals.add(ApprovalRecord(operation_id="op-1", created_at=now))
        assert first is not None and await store.approvals.add(ApprovalRecord(operation_id="op-1")) is None
        await store.approvals.mark_posted(first, "C0ALERTS", "3.4")
        assert [a.operation_id for a in await store.approvals.open()] == ["op-1"]
        assert await store.approvals.finish(
            "op-1", status="APPROVED", decided_by="U0ALICE", decided_in="slack", response_message="ok", at=now
        )
        assert await store.approvals.open() == []
    finally:
        await store.close()


V4 = Path(__file__).resolve().parents[1] / "data" / "v4"


@pytest.fixture
async def v4_store(backend: Backend) -> AsyncIterator[Store]:
    """The schema-4 database (tests/data/v4, written by the store before subscriptions), restored
    into the test's fresh one and opened by the current code."""
    async with restored(backend, V4, "csbot_v4") as store:
        yield store


async def test_a_v4_database_gets_digests_and_subscriptions_and_keeps_its_data(v4_store: Store) -> None:
    from bot.store import DigestRecord, DigestRow, SubscriptionRecord

    store = v4_store
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(schema_version.c.version))).scalar_one() == latest_version()
    [row] = await store.actions.list(limit=10)
    assert (row.action, row.actor_name, row.status, row.execution_id, row.pipeline) == (
        "rerun",
        "alice",
        "started",
        "e4",
        "payments-ci",
    )
    alert = await store.alerts.latest_for_event("git", "7f3a1b2c-0000-4000-8000-000000000004")
    assert alert is not None and alert.repeats == 1 and alert.series == "git:demo:payments-ci:payments:main"
    [mute] = await store.mutes.active(store.now())
    assert (mute.pipeline, mute.muted_by) == ("flaky-ci", "U0ALICE")
    assert await store.cursors.get("watcher:git") == '{"v":1}'
    # v5: a digest with a row is saved, found, and its row counts as an alert.
    now = store.now()
    record = DigestRecord(channel_id="C0ALERTS", ts="1764936100.000100", created_at=now, updated_at=now)
    digest_row = DigestRow(kind="git", event_id="7f3a1b2c-0000-4000-8000-000000000005", execution_index=1, facts={})
    digest_id = await store.digests.save(record, [digest_row])
    found = await store.digests.at("C0ALERTS", "1764936100.000100")
    assert found is not None and found.id == digest_id
    assert await store.alerts.get("git", "7f3a1b2c-0000-4000-8000-000000000005", 1) is not None
    # v6: subscriptions.
    assert await store.subscriptions.live() == []
    new_id = await store.subscriptions.add(
        SubscriptionRecord(channel_id="C0PAYMENTS", project="Payments", created_by="U0ALICE")
    )
    assert [s.id for s in await store.subscriptions.live("C0PAYMENTS")] == [new_id]
    assert await store.subscriptions.remove(new_id, by="U0ALICE", at=store.now())
    assert not await store.subscriptions.remove(new_id, by="U0BOB", at=store.now())
    assert await store.subscriptions.live() == []
    # v7: approvals, one row per operation.
    first = await store.approvals.add(ApprovalRecord(operation_id="op-1", created_at=now))
    assert first is not None and await store.approvals.add(ApprovalRecord(operation_id="op-1")) is None


async def _engine_for(backend: Backend) -> Any:
    from bot.store.engine import make_engine

    return make_engine(backend.url, schema=backend.schema)


@pytest.mark.parametrize("stamped", [2, 3, None], ids=["stamped-2", "stamped-3", "stamped-latest"])
async def test_a_database_whose_layout_lags_its_version_is_repaired_on_open(
    backend: Backend, stamped: int | None
) -> None:
    """Found by review: migrations 2 and 3 were edited after commits that had stamped databases,
    so a schema-2 database could lack `undelivered_alerts` and a schema-3 one `alerts.mention`.
    The version number alone is not trusted: what is missing is created on open."""
    from sqlalchemy import inspect, text, update

    from bot.store.undelivered import undelivered_alerts

    store = await open_store(backend.url, schema=backend.schema)  # the current layout
    await store.close()
    engine = await _engine_for(backend)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: undelivered_alerts.drop(c))
            prefix = f'"{backend.schema}".' if backend.schema else ""
            await conn.execute(text(f"ALTER TABLE {prefix}alerts DROP COLUMN mention"))
            if stamped is not None:
                await conn.execute(update(schema_version).values(version=stamped))
    finally:
        await engine.dispose()

    store = await open_store(backend.url, schema=backend.schema)
    try:

        def layout(conn: Any) -> tuple[bool, set[str]]:
            found = inspect(conn)
            schema = conn.schema_for_object(undelivered_alerts)
            columns = {c["name"] for c in found.get_columns("alerts", schema=schema)}
            return found.has_table("undelivered_alerts", schema=schema), columns

        async with store.engine.connect() as conn:
            has_table, columns = await conn.run_sync(layout)
        assert has_table and "mention" in columns
        async with store.engine.connect() as conn:
            assert (await conn.execute(select(schema_version.c.version))).scalar() == latest_version()
    finally:
        await store.close()
