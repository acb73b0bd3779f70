"""Tests for bot.store on SQLite and (when BOT_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, Table, Text, event, insert, select, text
from sqlalchemy.exc import OperationalError

from bot.store import (
    ActionRecord,
    AlertRecord,
    FollowupRecord,
    SchemaVersionError,
    Store,
    open_store,
    upgrade,
)
from bot.store.cursors import cursors
from bot.store.migrate import schema_version
from bot.store.tables import MIGRATIONS, Migration, add_column, latest_version
from tests.conftest import Backend

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]
LATEST = latest_version()
NEXT = LATEST + 1


class FakeClock:
    """A controllable clock shared by stores in one test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(backend: Backend, clock: FakeClock) -> AsyncIterator[Store]:
    s = await open_store(backend.url, schema=backend.schema, clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def store2(backend: Backend, clock: FakeClock, store: Store) -> AsyncIterator[Store]:
    """A second Store (its own engine and pool) on the same database."""
    s = await open_store(backend.url, schema=backend.schema, clock=clock)
    try:
        yield s
    finally:
        await s.close()


async def _version(s: Store) -> int:
    async with s.engine.connect() as conn:
        return int((await conn.execute(select(schema_version.c.version))).scalar_one())


def _action(**overrides: Any) -> ActionRecord:
    values: dict[str, Any] = {
        "kind": "git",
        "event_id": "ev-1",
        "action": "rerun",
        "actor_id": "U1",
        "surface": "slash",
        "created_at": T0,
    }
    values.update(overrides)
    return ActionRecord(**values)


def _followup(**overrides: Any) -> FollowupRecord:
    values: dict[str, Any] = {
        "execution_id": "exec-1",
        "kind": "git",
        "event_id": "ev-1",
        "channel_id": "C1",
        "summary_ts": "1.1",
        "next_poll_at": T0,
        "deadline_at": T0 + timedelta(hours=1),
        "created_at": T0,
    }
    values.update(overrides)
    return FollowupRecord(**values)


# -- schema ----------------------------------------------------------------------------------


async def test_open_is_idempotent_and_pings(backend: Backend, store: Store) -> None:
    await store.ping()
    assert await _version(store) == LATEST
    await store.cursors.set("kept", "yes")
    again = await open_store(backend.url, schema=backend.schema)
    try:
        await again.ping()
        assert await _version(again) == LATEST
        assert await again.cursors.get("kept") == "yes"
        assert again.dialect == ("postgresql" if backend.name == "postgres" else "sqlite")
    finally:
        await again.close()


async def test_concurrent_open_of_fresh_database(backend: Backend) -> None:
    stores = await asyncio.gather(*(open_store(backend.url, schema=backend.schema) for _ in range(4)))
    try:
        for s in stores:
            assert await _version(s) == LATEST
    finally:
        for s in stores:
            await s.close()


async def test_migrations_run_once_and_newer_schema_is_refused(backend: Backend, store: Store) -> None:
    ran: list[int] = []
    note = Column("note", Text)
    Table("cursors", MetaData(), note)  # the next shape of the column, for add_column

    def v2(conn: Any) -> None:
        ran.append(NEXT)
        add_column(conn, note)
        conn.execute(insert(cursors).values(name="migrated", value="v2", updated_at=T0))

    migrations = [*MIGRATIONS, Migration(NEXT, "cursor notes", v2)]
    assert await upgrade(store.engine, schema=backend.schema, now=T0, migrations=migrations) == NEXT
    assert await upgrade(store.engine, schema=backend.schema, now=T0, migrations=migrations) == NEXT
    assert ran == [NEXT]
    assert await _version(store) == NEXT
    assert await store.cursors.get("migrated") == "v2"
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(note.table.c.note))).all() == [(None,)]
    with pytest.raises(SchemaVersionError, match="newer"):
        await open_store(backend.url, schema=backend.schema)


async def test_unsupported_url_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        await open_store("mysql+aiomysql://localhost/x")


# -- claims ----------------------------------------------------------------------------------


async def test_claim_win_lose_and_expiry(store: Store, store2: Store, clock: FakeClock) -> None:
    first = await store.claims.claim("git:ev-1:rerun", "req-a", 30, {"who": "a"})
    assert first.won
    assert (first.holder, first.data) == ("req-a", {"who": "a"})
    assert first.claimed_at == T0
    assert first.expires_at == T0 + timedelta(seconds=30)
    assert first.claimed_at.tzinfo is UTC

    clock.advance(29.999)
    second = await store2.claims.claim("git:ev-1:rerun", "req-b", 30, {"who": "b"})
    assert not second.won
    assert (second.holder, second.data, second.claimed_at) == ("req-a", {"who": "a"}, T0)
    # The same holder asking again does not "win" a second time.
    assert not (await store.claims.claim("git:ev-1:rerun", "req-a", 30)).won

    # The winner publishes its outcome; losers see it. Others cannot overwrite it.
    assert await store.claims.update_data("git:ev-1:rerun", "req-a", {"outcome": "started"})
    assert not await store2.claims.update_data("git:ev-1:rerun", "req-b", {"outcome": "hijack"})
    assert (await store2.claims.claim("git:ev-1:rerun", "req-c", 30)).data == {"outcome": "started"}
    got = await store2.claims.get("git:ev-1:rerun")
    assert got is not None
    assert got.holder == "req-a"

    clock.advance(0.001)  # exactly at expiry: the next caller wins anew
    third = await store2.claims.claim("git:ev-1:rerun", "req-d", 10)
    assert third.won
    assert (third.holder, third.data, third.claimed_at) == ("req-d", {}, clock.now)
    assert not (await store.claims.claim("git:ev-1:rerun", "req-e", 10)).won
    # Other keys are independent.
    assert (await store.claims.claim("git:ev-2:rerun", "req-e", 10)).won


async def test_release_claim_and_purge(store: Store, clock: FakeClock) -> None:
    assert (await store.claims.claim("k", "a", 10)).won
    assert not await store.claims.release("k", "b")  # not the holder
    assert not (await store.claims.claim("k", "b", 10)).won
    assert await store.claims.release("k", "a")
    assert await store.claims.get("k") is None
    assert (await store.claims.claim("k", "b", 10)).won
    assert (await store.claims.claim("old", "a", 1)).won
    clock.advance(5)
    assert await store.claims.purge_expired(older_than=3) == 1
    assert await store.claims.get("k") is not None


async def test_claim_rejects_bad_window(store: Store) -> None:
    with pytest.raises(ValueError, match="window"):
        await store.claims.claim("k", "a", 0)


async def test_claim_race_two_engines(store: Store, store2: Store) -> None:
    async def attempt(i: int) -> tuple[int, Any]:
        s = store if i % 2 else store2
        return i, await s.claims.claim("race", f"holder-{i}", 60, {"i": i})

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    winners = [i for i, c in results if c.won]
    assert len(winners) == 1
    (w,) = winners
    assert {(c.holder, c.data["i"]) for _, c in results} == {(f"holder-{w}", w)}


_CHILD = """
import asyncio, json, sys
from bot.store import open_store

async def main(url, schema, n):
    store = await open_store(url, schema=schema or None)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        claims = await asyncio.gather(*(store.claims.claim(f"k{i}", f"child-{i}", 60) for i in range(n)))
        print(json.dumps({c.key: [c.won, c.holder] for c in claims}), flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_claim_race_two_processes(backend: Backend) -> None:
    n = 60
    store = await open_store(backend.url, schema=backend.schema)  # real clock, like the child
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            backend.url,
            backend.schema or "",
            str(n),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        mine = await asyncio.gather(*(store.claims.claim(f"k{i}", f"parent-{i}", 60) for i in range(n)))
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0
    finally:
        await store.close()
    theirs: dict[str, list[Any]] = json.loads(out)
    for c in mine:
        child_won, child_holder = theirs[c.key]
        assert c.won != child_won, c.key  # exactly one winner per key
        assert c.holder == child_holder  # both agree who it is
        assert c.holder == (f"parent-{c.key[1:]}" if c.won else f"child-{c.key[1:]}")


# -- actions ---------------------------------------------------------------------------------


async def test_actions_roundtrip_and_update(store: Store) -> None:
    rec = _action(actor_name="Ann", channel_id="C1", request_id="r-1")
    action_id = await store.actions.record(rec)
    got = await store.actions.get(action_id)
    assert got is not None
    assert got == rec.model_copy(update={"id": action_id})
    assert got.created_at.tzinfo is UTC

    finished = datetime(2024, 5, 1, 14, 0, 5, 123456, tzinfo=UTC)
    assert await store.actions.update(
        action_id,
        status="started",
        execution_id="exec-9",
        execution_link="https://cs/executions/exec-9",
        finished_at=finished,
    )
    got = await store.actions.get(action_id)
    assert got is not None
    assert (got.status, got.execution_id, got.finished_at) == ("started", "exec-9", finished)

    dup = await store.actions.record(_action(status="duplicate", duplicate_of=action_id))
    dup_rec = await store.actions.get(dup)
    assert dup_rec is not None
    assert dup_rec.duplicate_of == action_id
    assert await store.actions.update(dup, error="boom", error_class="CodeStreamError", status="failed")

    assert not await store.actions.update(999_999, status="failed")
    assert await store.actions.get(999_999) is None
    with pytest.raises(TypeError, match="bogus"):
        await store.actions.update(action_id, bogus=1)
    with pytest.raises(TypeError, match="id"):
        await store.actions.update(action_id, id=5)
    with pytest.raises(ValidationError):
        await store.actions.update(action_id, finished_at=datetime(2024, 1, 1))  # naive


async def test_list_actions_filters_and_order(store: Store) -> None:
    ids = []
    for i in range(6):
        ids.append(
            await store.actions.record(
                _action(
                    event_id=f"ev-{i % 2}",
                    actor_id=f"U{i % 3}",
                    created_at=T0 + timedelta(minutes=i),
                )
            )
        )
    # Same created_at as the last one: ties break by id, newest first.
    ids.append(await store.actions.record(_action(event_id="ev-1", created_at=T0 + timedelta(minutes=5))))

    assert [a.id for a in await store.actions.list()] == ids[::-1]
    assert [a.id for a in await store.actions.list(limit=2, offset=1)] == [ids[5], ids[4]]
    assert [a.id for a in await store.actions.list(event_id="ev-0")] == [ids[4], ids[2], ids[0]]
    assert [a.id for a in await store.actions.list(actor_id="U1")] == [ids[6], ids[4], ids[1]]
    since = T0 + timedelta(minutes=3)
    assert [a.id for a in await store.actions.list(since=since)] == [ids[6], ids[5], ids[4], ids[3]]
    assert [a.id for a in await store.actions.list(since=since, event_id="ev-1", actor_id="U0")] == [ids[3]]
    assert await store.actions.list(kind="docker") == []


# -- alerts ----------------------------------------------------------------------------------


async def test_alert_uniqueness_including_none_index(store: Store, store2: Store) -> None:
    a0 = AlertRecord(kind="git", event_id="ev-1", execution_index=0, channel_id="C1", ts="100.1", created_at=T0)
    assert await store.alerts.save(a0)
    assert not await store2.alerts.save(a0.model_copy(update={"ts": "999.9"}))  # no overwrite
    got = await store.alerts.get("git", "ev-1", 0)
    assert got is not None
    assert got.ts == "100.1"
    assert got.execution_index == 0
    assert got.created_at == T0

    none = AlertRecord(kind="git", event_id="ev-1", execution_index=None, channel_id="C1", ts="100.2")
    assert await store.alerts.save(none)
    assert not await store.alerts.save(none.model_copy(update={"ts": "100.3"}))
    got_none = await store.alerts.get("git", "ev-1", None)
    assert got_none is not None
    assert (got_none.ts, got_none.execution_index) == ("100.2", None)

    # Same event id under another kind is a different alert.
    assert await store.alerts.save(a0.model_copy(update={"kind": "gerrit"}))
    assert await store.alerts.get("git", "ev-1", 7) is None
    with pytest.raises(ValidationError):
        AlertRecord(kind="git", event_id="e", execution_index=-1, channel_id="C", ts="1")


async def test_alert_race_single_insert(store: Store, store2: Store) -> None:
    rec = AlertRecord(kind="docker", event_id="ev", execution_index=None, channel_id="C", ts="1")
    results = await asyncio.gather(
        *((store if i % 2 else store2).alerts.save(rec.model_copy(update={"ts": str(i)})) for i in range(20))
    )
    assert sum(results) == 1


async def test_latest_alert_and_find_by_message(store: Store) -> None:
    first = AlertRecord(kind="git", event_id="ev-1", execution_index=0, channel_id="C1", ts="100.0", created_at=T0)
    repeat = AlertRecord(
        kind="git",
        event_id="ev-1",
        execution_index=1,
        channel_id="C1",
        ts="200.0",
        thread_ts="100.0",
        created_at=T0 + timedelta(minutes=5),
    )
    other = AlertRecord(kind="git", event_id="ev-2", execution_index=0, channel_id="C2", ts="100.0", created_at=T0)
    for rec in (first, repeat, other):
        assert await store.alerts.save(rec)

    latest = await store.alerts.latest_for_event("git", "ev-1")
    assert latest is not None
    assert latest.ts == "200.0"
    assert await store.alerts.latest_for_event("gerrit", "ev-1") is None

    # The thread parent is the first alert itself.
    parent = await store.alerts.find_by_message("C1", "100.0")
    assert parent is not None
    assert (parent.event_id, parent.execution_index) == ("ev-1", 0)
    # The repeat alert by its own ts.
    by_ts = await store.alerts.find_by_message("C1", "200.0")
    assert by_ts is not None
    assert by_ts.execution_index == 1
    # Channel matters.
    in_c2 = await store.alerts.find_by_message("C2", "100.0")
    assert in_c2 is not None
    assert in_c2.event_id == "ev-2"
    assert await store.alerts.find_by_message("C3", "100.0") is None
    assert await store.alerts.find_by_message("C1", "300.0") is None


async def test_find_alert_by_thread_ts_only(store: Store) -> None:
    # The thread parent is not an alert (e.g. a summary message); alerts threaded under it.
    for i, minute in ((0, 1), (1, 2)):
        await store.alerts.save(
            AlertRecord(
                kind="git",
                event_id="ev-9",
                execution_index=i,
                channel_id="C1",
                ts=f"50{i}.0",
                thread_ts="400.0",
                created_at=T0 + timedelta(minutes=minute),
            )
        )
    found = await store.alerts.find_by_message("C1", "400.0")
    assert found is not None
    assert found.execution_index == 1  # newest


# -- followups -------------------------------------------------------------------------------


async def test_followups_due_ordering_and_updates(store: Store) -> None:
    late = await store.followups.add(_followup(execution_id="late", next_poll_at=T0 + timedelta(seconds=30)))
    early = await store.followups.add(
        _followup(
            execution_id="early",
            next_poll_at=T0 - timedelta(seconds=10),
            action_id=7,
            alert_channel_id="C9",
            alert_ts="9.9",
            actor_id="U1",
        )
    )
    now_ = await store.followups.add(_followup(execution_id="now", next_poll_at=T0))
    done = await store.followups.add(_followup(execution_id="done", next_poll_at=T0 - timedelta(hours=1)))
    assert await store.followups.update(done, status="COMPLETED", finished_at=T0)

    assert await store.followups.active_count() == 3
    due = await store.followups.due(T0)
    assert [f.execution_id for f in due] == ["early", "now"]
    assert [f.id for f in due] == [early, now_]
    assert (due[0].action_id, due[0].alert_ts, due[0].status, due[0].interval) == (7, "9.9", "RUNNING", 5.0)
    assert [f.id for f in await store.followups.due(T0 + timedelta(minutes=1), limit=2)] == [early, now_]
    assert [f.id for f in await store.followups.due(T0 + timedelta(minutes=1))] == [early, now_, late]

    next_poll = T0 + timedelta(seconds=45)
    assert await store.followups.update(early, next_poll_at=next_poll, interval=7.5, status="WAITING")
    got = await store.followups.get(early)
    assert got is not None
    assert (got.next_poll_at, got.interval, got.status, got.finished_at) == (next_poll, 7.5, "WAITING", None)
    assert [f.id for f in await store.followups.due(T0 + timedelta(minutes=1))] == [now_, late, early]

    assert not await store.followups.update(999_999, status="FAILED")
    assert await store.followups.get(999_999) is None
    with pytest.raises(TypeError, match="nope"):
        await store.followups.update(early, nope=1)


async def test_due_followups_defaults_to_store_clock(store: Store, clock: FakeClock) -> None:
    fid = await store.followups.add(_followup(next_poll_at=T0 + timedelta(seconds=5)))
    assert await store.followups.due() == []
    clock.advance(5)
    assert [f.id for f in await store.followups.due()] == [fid]


# -- leases ----------------------------------------------------------------------------------


async def test_lease_lifecycle(store: Store, store2: Store, clock: FakeClock) -> None:
    assert await store.liveness.lease_holder("watcher") is None
    assert await store.liveness.acquire_lease("watcher", "pod-a", 10)
    assert not await store2.liveness.acquire_lease("watcher", "pod-b", 10)
    assert await store2.liveness.lease_holder("watcher") == ("pod-a", T0 + timedelta(seconds=10))

    clock.advance(5)
    assert await store.liveness.acquire_lease("watcher", "pod-a", 10)  # re-acquire extends
    assert not await store2.liveness.renew_lease("watcher", "pod-b", 10)
    clock.advance(5)
    assert await store.liveness.renew_lease("watcher", "pod-a", 20)
    assert await store.liveness.lease_holder("watcher") == ("pod-a", clock.now + timedelta(seconds=20))

    clock.advance(20)  # expired
    assert await store.liveness.lease_holder("watcher") is None
    assert await store2.liveness.acquire_lease("watcher", "pod-b", 10)  # takeover
    assert await store.liveness.lease_holder("watcher") == ("pod-b", clock.now + timedelta(seconds=10))
    assert not await store.liveness.renew_lease("watcher", "pod-a", 10)
    assert not await store.liveness.release_lease("watcher", "pod-a")  # not the holder: no effect
    assert (await store.liveness.lease_holder("watcher") or ("",))[0] == "pod-b"
    assert await store2.liveness.release_lease("watcher", "pod-b")
    assert await store.liveness.lease_holder("watcher") is None
    assert await store.liveness.acquire_lease("watcher", "pod-a", 10)
    # Leases are independent by name.
    assert await store2.liveness.acquire_lease("followup", "pod-b", 10)


async def test_lease_race_two_engines(store: Store, store2: Store) -> None:
    results = await asyncio.gather(
        *((store if i % 2 else store2).liveness.acquire_lease("leader", f"pod-{i}", 30) for i in range(30))
    )
    assert sum(results) == 1
    holder = await store.liveness.lease_holder("leader")
    assert holder is not None
    assert holder[0] == f"pod-{results.index(True)}"


# -- cursors and time ------------------------------------------------------------------------


async def test_cursors(store: Store, store2: Store) -> None:
    assert await store.cursors.get("git-events") is None
    await store.cursors.set("git-events", "2024-05-01T12:00:00Z")
    assert await store2.cursors.get("git-events") == "2024-05-01T12:00:00Z"
    await store2.cursors.set("git-events", "2024-05-01T12:05:00Z")
    assert await store.cursors.get("git-events") == "2024-05-01T12:05:00Z"
    assert await store.cursors.get("gerrit-events") is None


async def test_timestamps_are_utc_from_any_offset(store: Store) -> None:
    from datetime import timezone

    plus2 = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, tzinfo=plus2)  # == T0
    action_id = await store.actions.record(_action(created_at=local))
    got = await store.actions.get(action_id)
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.tzinfo is UTC
    assert [a.id for a in await store.actions.list(since=T0)] == [action_id]
    with pytest.raises(ValidationError):
        _action(created_at=datetime(2024, 5, 1))  # naive


async def test_naive_clock_rejected(backend: Backend) -> None:
    s = await open_store(backend.url, schema=backend.schema)
    try:
        naive = Store(s.engine, clock=lambda: datetime(2024, 1, 1))
        with pytest.raises(ValueError, match="naive"):
            await naive.claims.claim("k", "a", 1)
    finally:
        await s.close()


async def test_sqlite_storage_is_wal_and_sortable_text(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plain.db'}", clock=FakeClock())  # driver defaulted
    try:
        await store.cursors.set("c", "v")
        async with store.engine.connect() as conn:
            raw = (await conn.execute(text("SELECT updated_at FROM cursors"))).scalar_one()
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await store.close()
    assert raw == "2024-05-01 12:00:00.000000"
    assert mode == "wal"


# -- intents: claim + pending row, close + settle, each in one transaction ------------------


def _fail_next(s: Store, statement: str) -> list[str]:
    """Make the next statement like ``statement`` ("INSERT INTO ACTIONS": the schema, if any,
    aside) fail, as a lost connection would."""
    failed: list[str] = []
    verb, table = statement.rsplit(" ", 1)

    def before_execute(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        words = sql.upper().split()
        named = words[len(verb.split())].split(".")[-1].strip('"') if len(words) > len(verb.split()) else ""
        if " ".join(words[: len(verb.split())]) == verb and named == table and not failed:
            failed.append(sql)
            raise RuntimeError("store went away")

    event.listen(s.engine.sync_engine, "before_cursor_execute", before_execute)
    return failed


async def test_claim_intent_writes_claim_row_and_id_together(store: Store, store2: Store, clock: FakeClock) -> None:
    pending = _action(request_id="req-a", owner="replica-1", settle_by=T0 + timedelta(minutes=5))
    claim, action_id = await store.intents.claim("intent:git:ev-1", "req-a", 60, {"verb": "rerun"}, pending)
    assert claim.won and action_id is not None
    assert (claim.holder, claim.data) == ("req-a", {"verb": "rerun", "action_id": action_id})
    assert claim.expires_at == T0 + timedelta(seconds=60)
    row = await store.actions.get(action_id)
    assert row is not None and row.in_flight and (row.request_id, row.owner) == ("req-a", "replica-1")
    held = await store2.claims.get("intent:git:ev-1")
    assert held is not None and held.data == {"verb": "rerun", "action_id": action_id}

    # A loser gets the winner's claim (with its row's id) and writes nothing.
    loser = _action(request_id="req-b")
    lost, none = await store2.intents.claim("intent:git:ev-1", "req-b", 60, {"verb": "resume"}, loser)
    assert not lost.won and none is None
    assert (lost.holder, lost.data) == ("req-a", {"verb": "rerun", "action_id": action_id})
    assert [r.id for r in await store.actions.list()] == [action_id]

    with pytest.raises(ValueError, match="window"):
        await store.intents.claim("intent:git:ev-2", "req-c", 0, {}, _action())


async def test_claim_intent_race_one_winner_one_row(store: Store, store2: Store) -> None:
    async def attempt(i: int) -> tuple[Any, int | None]:
        s = store if i % 2 else store2
        return await s.intents.claim("intent:race", f"h-{i}", 60, {"i": i}, _action(request_id=f"h-{i}"))

    results = await asyncio.gather(*(attempt(i) for i in range(30)))
    winners = [(c, a) for c, a in results if c.won]
    assert len(winners) == 1
    [(winner, action_id)] = winners
    assert all(a is None and c.data == winner.data for c, a in results if not c.won)
    [row] = await store.actions.list()
    assert (row.id, row.request_id) == (action_id, winner.holder)


@pytest.mark.parametrize("statement", ["INSERT INTO ACTIONS", "UPDATE CLAIMS"])
async def test_claim_intent_failing_midway_writes_nothing(store: Store, store2: Store, statement: str) -> None:
    failed = _fail_next(store, statement)
    with pytest.raises(RuntimeError, match="store went away"):
        await store.intents.claim("intent:git:ev-1", "req-a", 60, {"verb": "rerun"}, _action(request_id="req-a"))
    assert failed
    # Neither a claim nor a pending row is left behind, and the intent is free at once.
    assert await store2.claims.get("intent:git:ev-1") is None
    assert await store2.actions.list() == []
    claim, action_id = await store2.intents.claim("intent:git:ev-1", "req-b", 60, {}, _action(request_id="req-b"))
    assert claim.won and action_id is not None


async def test_finish_intent_closes_the_row_and_settles_or_releases(store: Store, clock: FakeClock) -> None:
    done = {"status": "started", "finished_at": T0, "execution_id": "exec-9"}
    for holder, settle_for in (("req-a", 300.0), ("req-b", None)):
        key = f"intent:git:{holder}"
        _, action_id = await store.intents.claim(key, holder, 3600, {}, _action(request_id=holder, owner="r1"))
        assert action_id is not None
        assert await store.intents.finish(key, holder, action_id, "r1", done, settle_for=settle_for)
        row = await store.actions.get(action_id)
        assert row is not None and (row.status, row.execution_id, row.in_flight) == ("started", "exec-9", False)
        claim = await store.claims.get(key)
        if settle_for is None:
            assert claim is None  # released: the next caller wins at once
        else:
            assert claim is not None and claim.expires_at == T0 + timedelta(seconds=settle_for)
        # A second finish finds the row closed (today's rule: the claim still ends).
        assert not await store.intents.finish(key, holder, action_id, "r1", {"status": "failed"}, settle_for=None)
        assert await store.claims.get(key) is None
    # Someone else's row is left alone; unknown fields are refused before anything is written.
    _, other = await store.intents.claim("intent:git:c", "req-c", 3600, {}, _action(request_id="req-c", owner="r2"))
    assert other is not None
    assert not await store.intents.finish("intent:git:c", "req-c", other, "r1", done, settle_for=None)
    with pytest.raises(TypeError):
        await store.intents.finish("intent:git:c", "req-c", other, "r2", {"nope": 1}, settle_for=None)
    row = await store.actions.get(other)
    assert row is not None and row.in_flight


async def test_finish_intent_failing_midway_changes_nothing(store: Store, store2: Store) -> None:
    key = "intent:git:ev-1"
    _, action_id = await store.intents.claim(key, "req-a", 3600, {}, _action(request_id="req-a", owner="r1"))
    assert action_id is not None
    failed = _fail_next(store, "DELETE FROM CLAIMS")
    with pytest.raises(RuntimeError, match="store went away"):
        await store.intents.finish(key, "req-a", action_id, "r1", {"status": "failed"}, settle_for=None)
    assert failed
    row = await store2.actions.get(action_id)
    assert row is not None and row.in_flight  # the close rolled back with the release
    claim = await store2.claims.get(key)
    assert claim is not None and claim.holder == "req-a"


# -- SQLite transactions: how they begin, and that none outlives its connection --------------


async def _sqlite_pair(tmp_path: Path) -> tuple[Store, Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locks.db'}"
    return await open_store(url, clock=FakeClock()), await open_store(url, clock=FakeClock())


async def test_sqlite_writers_begin_immediate_and_readers_deferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.store.engine

    monkeypatch.setattr(bot.store.engine, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # fail fast when locked
    store, other = await _sqlite_pair(tmp_path)
    try:
        await store.cursors.set("c", "v")
        async with other.engine.connect() as holder:
            driver: Any = (await holder.get_raw_connection()).driver_connection  # aiosqlite's
            await driver.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            assert await store.cursors.get("c") == "v"  # a reader does not wait (deferred, WAL)
            with pytest.raises(OperationalError, match="locked"):  # a writer waits, then fails as SQLAlchemy's
                await store.cursors.set("c", "w")
            await driver.rollback()
        await store.cursors.set("c", "w")  # and its connection is fine afterwards
        assert await other.cursors.get("c") == "w"
    finally:
        await store.close()
        await other.close()


async def test_sqlite_connection_returned_mid_transaction_holds_no_lock(tmp_path: Path) -> None:
    store, other = await _sqlite_pair(tmp_path)
    try:

        async def write_then_fail() -> None:
            async with store.cursors._write() as conn:
                await conn.execute(insert(cursors).values(name="a", value="1", updated_at=T0))
                raise RuntimeError("midway")

        with pytest.raises(RuntimeError, match="midway"):
            await write_then_fail()
        # The lock is gone at once (busy_timeout would make a leak wait 30 s) and nothing stayed.
        await asyncio.wait_for(other.cursors.set("b", "2"), 5)
        assert await other.cursors.get("a") is None
        # Even a transaction SQLAlchemy never saw (begun on the driver itself) ends with its connection.
        async with store.engine.connect() as conn:
            driver: Any = (await conn.get_raw_connection()).driver_connection
            await driver.execute("BEGIN IMMEDIATE")
            assert driver.in_transaction
        await asyncio.wait_for(other.cursors.set("c", "3"), 5)
        async with store.engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert not driver.in_transaction
        await asyncio.wait_for(store.cursors.set("d", "4"), 5)  # its pooled connections still write
    finally:
        await store.close()
        await other.close()


async def test_an_unsent_intent_is_dropped_only_while_its_row_still_says_claimed(store: Store, store2: Store) -> None:
    """Found by review: a replica closing a stopped process's 'claimed' row raced the process
    itself marking it 'pending' before its POST; the close must be a compare-and-set."""
    claimed = _action(status="claimed", request_id="req-a", owner="replica-1")
    _, action_id = await store.intents.claim("intent:execution:ex-1", "req-a", 60, {}, claimed)
    assert action_id is not None
    closing = {"status": "not_started", "finished_at": T0}
    # The process marked it pending (its POST may be on its way): nothing is dropped.
    assert await store.actions.update_open(action_id, "replica-1", status="pending")
    assert not await store2.intents.drop_unsent("intent:execution:ex-1", "req-a", action_id, "replica-1", closing)
    row = await store.actions.get(action_id)
    assert row is not None and row.status == "pending" and row.finished_at is None
    assert await store.claims.get("intent:execution:ex-1") is not None
    # Still claimed: closed and the claim released, in one go.
    claimed2 = _action(status="claimed", request_id="req-b", owner="replica-1")
    _, second = await store.intents.claim("intent:execution:ex-2", "req-b", 60, {}, claimed2)
    assert second is not None
    assert await store2.intents.drop_unsent("intent:execution:ex-2", "req-b", second, "replica-1", closing)
    row = await store.actions.get(second)
    assert row is not None and row.status == "not_started" and row.finished_at is not None
    assert await store.claims.get("intent:execution:ex-2") is None


async def test_the_hook_set_after_opening_runs_before_every_part_s_transactions(store: Store) -> None:
    """The app sets the acks-first hook once the store exists: every part, made before that, waits
    its turn once per read or write transaction."""
    turns: list[int] = []

    async def wait_turn() -> None:
        turns.append(1)

    store.before_each_transaction(wait_turn)
    await store.cursors.set("c", "v")  # a write
    assert await store.cursors.get("c") == "v"  # a read
    await store.mutes.active(T0)
    await store.claims.claim("k", "a", 10)
    await store.intents.claim("intent:k", "a", 10, {}, _action())
    await store.liveness.heartbeat("me")
    await store.ping()
    assert len(turns) == 7
