"""Alerts: one per event and execution, found by event and by message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import ValidationError

from bot.store import AlertRecord, Store
from tests.store.common import T0


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
