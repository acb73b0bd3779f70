"""The audit rows: written, changed, listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.store import Store
from tests.store.common import T0, make_action


async def test_actions_roundtrip_and_update(store: Store) -> None:
    rec = make_action(actor_name="Ann", channel_id="C1", request_id="r-1")
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

    dup = await store.actions.record(make_action(status="duplicate", duplicate_of=action_id))
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
                make_action(
                    event_id=f"ev-{i % 2}",
                    actor_id=f"U{i % 3}",
                    created_at=T0 + timedelta(minutes=i),
                )
            )
        )
    # Same created_at as the last one: ties break by id, newest first.
    ids.append(await store.actions.record(make_action(event_id="ev-1", created_at=T0 + timedelta(minutes=5))))

    assert [a.id for a in await store.actions.list()] == ids[::-1]
    assert [a.id for a in await store.actions.list(limit=2, offset=1)] == [ids[5], ids[4]]
    assert [a.id for a in await store.actions.list(event_id="ev-0")] == [ids[4], ids[2], ids[0]]
    assert [a.id for a in await store.actions.list(actor_id="U1")] == [ids[6], ids[4], ids[1]]
    since = T0 + timedelta(minutes=3)
    assert [a.id for a in await store.actions.list(since=since)] == [ids[6], ids[5], ids[4], ids[3]]
    assert [a.id for a in await store.actions.list(since=since, event_id="ev-1", actor_id="U0")] == [ids[3]]
    assert await store.actions.list(kind="docker") == []
