"""Intents: the claim and the pending row written together, closed and settled together, each in
one transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.store import Store
from tests.store.common import T0, FakeClock, make_action


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

    event.listen(s.statement_engine, "before_cursor_execute", before_execute)
    return failed


async def test_claim_intent_writes_claim_row_and_id_together(store: Store, store2: Store, clock: FakeClock) -> None:
    pending = make_action(request_id="req-a", owner="replica-1", settle_by=T0 + timedelta(minutes=5))
    claim, action_id = await store.intents.claim("intent:git:ev-1", "req-a", 60, {"verb": "rerun"}, pending)
    assert claim.won and action_id is not None
    assert (claim.holder, claim.data) == ("req-a", {"verb": "rerun", "action_id": action_id})
    assert claim.expires_at == T0 + timedelta(seconds=60)
    row = await store.actions.get(action_id)
    assert row is not None and row.in_flight and (row.request_id, row.owner) == ("req-a", "replica-1")
    held = await store2.claims.get("intent:git:ev-1")
    assert held is not None and held.data == {"verb": "rerun", "action_id": action_id}

    # A loser gets the winner's claim (with its row's id) and writes nothing.
    loser = make_action(request_id="req-b")
    lost, none = await store2.intents.claim("intent:git:ev-1", "req-b", 60, {"verb": "resume"}, loser)
    assert not lost.won and none is None
    assert (lost.holder, lost.data) == ("req-a", {"verb": "rerun", "action_id": action_id})
    assert [r.id for r in await store.actions.list()] == [action_id]

    with pytest.raises(ValueError, match="window"):
        await store.intents.claim("intent:git:ev-2", "req-c", 0, {}, make_action())


async def test_claim_intent_race_one_winner_one_row(store: Store, store2: Store) -> None:
    async def attempt(i: int) -> tuple[Any, int | None]:
        s = store if i % 2 else store2
        return await s.intents.claim("intent:race", f"h-{i}", 60, {"i": i}, make_action(request_id=f"h-{i}"))

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
        await store.intents.claim("intent:git:ev-1", "req-a", 60, {"verb": "rerun"}, make_action(request_id="req-a"))
    assert failed
    # Neither a claim nor a pending row is left behind, and the intent is free at once.
    assert await store2.claims.get("intent:git:ev-1") is None
    assert await store2.actions.list() == []
    claim, action_id = await store2.intents.claim("intent:git:ev-1", "req-b", 60, {}, make_action(request_id="req-b"))
    assert claim.won and action_id is not None


async def test_finish_intent_closes_the_row_and_settles_or_releases(store: Store, clock: FakeClock) -> None:
    done = {"status": "started", "finished_at": T0, "execution_id": "exec-9"}
    for holder, settle_for in (("req-a", 300.0), ("req-b", None)):
        key = f"intent:git:{holder}"
        _, action_id = await store.intents.claim(key, holder, 3600, {}, make_action(request_id=holder, owner="r1"))
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
    _, other = await store.intents.claim("intent:git:c", "req-c", 3600, {}, make_action(request_id="req-c", owner="r2"))
    assert other is not None
    assert not await store.intents.finish("intent:git:c", "req-c", other, "r1", done, settle_for=None)
    with pytest.raises(TypeError):
        await store.intents.finish("intent:git:c", "req-c", other, "r2", {"nope": 1}, settle_for=None)
    row = await store.actions.get(other)
    assert row is not None and row.in_flight


async def test_finish_intent_failing_midway_changes_nothing(store: Store, store2: Store) -> None:
    key = "intent:git:ev-1"
    _, action_id = await store.intents.claim(key, "req-a", 3600, {}, make_action(request_id="req-a", owner="r1"))
    assert action_id is not None
    failed = _fail_next(store, "DELETE FROM CLAIMS")
    with pytest.raises(RuntimeError, match="store went away"):
        await store.intents.finish(key, "req-a", action_id, "r1", {"status": "failed"}, settle_for=None)
    assert failed
    row = await store2.actions.get(action_id)
    assert row is not None and row.in_flight  # the close rolled back with the release
    claim = await store2.claims.get(key)
    assert claim is not None and claim.holder == "req-a"


async def test_an_unsent_intent_is_dropped_only_while_its_row_still_says_claimed(store: Store, store2: Store) -> None:
    """Found by review: a replica closing a stopped process's 'claimed' row raced the process
    itself marking it 'pending' before its POST; the close must be a compare-and-set."""
    claimed = make_action(status="claimed", request_id="req-a", owner="replica-1")
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
    claimed2 = make_action(status="claimed", request_id="req-b", owner="replica-1")
    _, second = await store.intents.claim("intent:execution:ex-2", "req-b", 60, {}, claimed2)
    assert second is not None
    assert await store2.intents.drop_unsent("intent:execution:ex-2", "req-b", second, "replica-1", closing)
    row = await store.actions.get(second)
    assert row is not None and row.status == "not_started" and row.finished_at is not None
    assert await store.claims.get("intent:execution:ex-2") is None
