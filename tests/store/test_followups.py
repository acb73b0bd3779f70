"""Followups: due in order of their next poll, changed in place."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store import Store
from tests.store.common import T0, FakeClock, make_followup


async def test_followups_due_ordering_and_updates(store: Store) -> None:
    late = await store.followups.add(make_followup(execution_id="late", next_poll_at=T0 + timedelta(seconds=30)))
    early = await store.followups.add(
        make_followup(
            execution_id="early",
            next_poll_at=T0 - timedelta(seconds=10),
            action_id=7,
            alert_channel_id="C9",
            alert_ts="9.9",
            actor_id="U1",
        )
    )
    now_ = await store.followups.add(make_followup(execution_id="now", next_poll_at=T0))
    done = await store.followups.add(make_followup(execution_id="done", next_poll_at=T0 - timedelta(hours=1)))
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
    fid = await store.followups.add(make_followup(next_poll_at=T0 + timedelta(seconds=5)))
    assert await store.followups.due() == []
    clock.advance(5)
    assert [f.id for f in await store.followups.due()] == [fid]
