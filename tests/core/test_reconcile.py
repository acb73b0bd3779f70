"""The reconciler against the simulator and a real store: who takes which open action, and the
housekeeping that keeps tables from growing for ever."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.codestream.client import CodeStreamClient
from bot.core.intents import IN_FLIGHT_CLAIM_SECONDS, intent_key
from bot.core.liveness import Liveness, new_replica_id, process_gone
from bot.core.ports import LoggedOutcomes
from bot.core.reconcile import Reconciler, ReconcileTiming
from bot.core.requests import ActionRequest, Actor
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.slack.signature import SIGNATURE_WINDOW_SECONDS, signature_key
from bot.store import ActionRecord, Store, open_store
from bot.store.claims import claims
from tests.builders import event_actions
from tests.builders import reconciler as build_reconciler

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POST_PATH = f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", clock=clock)
    yield opened
    await opened.close()


def reconciler(store: Store, client: CodeStreamClient, owner: str, **kwargs: Any) -> Reconciler:
    return build_reconciler(
        store, client, LoggedOutcomes(), owner=owner, timing=ReconcileTiming(stale_after=30), **kwargs
    )


async def claim_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(claims))).scalar_one())


async def test_expired_claims_and_seen_signatures_are_purged_and_audit_rows_kept_by_default(
    store: Store, client: CodeStreamClient, clock: Clock
) -> None:
    await store.claims.claim("intent:git:done", "r1", 300)
    await store.claims.claim(signature_key("v0=abc"), "r2", SIGNATURE_WINDOW_SECONDS)
    await store.claims.claim("intent:git:recent", "r3", 3600)
    await store.actions.record(
        ActionRecord(
            kind="git",
            event_id="e",
            action="rerun",
            actor_id="U1",
            surface="slash",
            status="started",
            created_at=T0 - timedelta(days=400),
            finished_at=T0 - timedelta(days=400),
        )
    )
    clock.advance(seconds=SIGNATURE_WINDOW_SECONDS + 1)
    await reconciler(store, client, "me:1:x:1").round()
    assert await claim_count(store) == 1  # only the unexpired one
    assert len(await store.actions.list()) == 1  # audit rows are kept for ever unless told otherwise


async def test_audit_retention_deletes_old_finished_rows_only(
    store: Store, client: CodeStreamClient, clock: Clock
) -> None:
    def row(status: str, days_ago: float) -> ActionRecord:
        at = T0 - timedelta(days=days_ago)
        return ActionRecord(
            kind="git",
            event_id="e",
            action="rerun",
            actor_id="U1",
            surface="slash",
            status=status,
            created_at=at,
            finished_at=None if status == "unknown" else at,
            owner="alive:2:x:2" if status == "unknown" else None,
            settle_by=at,
        )

    for status, days in [("started", 40), ("denied", 31), ("started", 10), ("unknown", 45)]:
        await store.actions.record(row(status, days))
    await store.liveness.heartbeat("alive:2:x:2")  # the replica finishing the open one runs
    await reconciler(store, client, "me:1:x:1", retention_days=30).round()
    left = sorted((r.status, (T0 - r.created_at).days) for r in await store.actions.list())
    assert left == [("started", 10), ("unknown", 45)]  # an open action is never deleted


async def test_a_live_replicas_open_action_is_left_to_it_and_a_dead_ones_taken_over_once(
    store: Store, client: CodeStreamClient, sim: CodeStreamSimulator, clock: Clock
) -> None:
    alive, dead = "hostA:100:x:a", "hostB:200:x:b"
    await store.liveness.heartbeat(alive)
    await store.liveness.heartbeat(dead)
    sim.inject(Fault(method="POST", path="/codestream/api/git-events/", status=502, times=2))  # two unknowns
    for owner in (alive, dead):
        actions = event_actions(client, store, owner=owner)
        outcome = await actions.perform(
            ActionRequest(
                "rerun",
                "git",
                SAMPLE_FAILED_GIT_ID if owner == alive else sim.add_event("git")["id"],
                Actor("U0ALICE"),
                "button",
            )
        )
        assert outcome.status == "unknown"
        await actions.follow_unknown(outcome, None)
    clock.advance(seconds=20)
    await store.liveness.heartbeat(alive)  # the dead one stops beating
    clock.advance(seconds=20)
    mine, other = reconciler(store, client, "hostC:300:x:c"), reconciler(store, client, "hostD:400:x:d")
    await mine.start()  # their first heartbeats
    await other.start()
    assert await mine.round() == 1 and await other.round() == 0  # one taker, and only the dead one's
    rows = {r.owner: r for r in await store.actions.list()}
    assert set(rows) == {alive, "hostC:300:x:c"}
    assert mine.taken_over == 1 and other.taken_over == 0


def test_a_process_that_is_gone_is_told_from_one_that_runs() -> None:
    me = new_replica_id()
    host, pid, namespace, _ = me.rsplit(":", 3)
    assert not process_gone(me, me)
    assert process_gone(f"{host}:{pid}:{namespace}:earlier", me)  # our pid, an earlier process
    assert not process_gone(f"{host}:1:{namespace}:x", me) or namespace == "-"  # pid 1 runs
    dead_pid = 4_000_000  # above any pid_max
    assert process_gone(f"{host}:{dead_pid}:{namespace}:x", me) == (namespace != "-")
    assert not process_gone(f"otherhost:{dead_pid}:{namespace}:x", me)  # another machine: cannot tell
    inode = namespace.split(".")[0]
    # Same host name and pid-namespace number, another boot (another machine): cannot tell.
    assert not process_gone(f"{host}:{dead_pid}:{inode}.000000000000:x", me)
    assert not process_gone("legacy-holder", me)
    assert os.getpid() == int(pid)


async def test_liveness_reads_heartbeats(store: Store, clock: Clock) -> None:
    live = Liveness(store, "me:1:x:1", stale_after=30)
    await store.liveness.heartbeat("other:2:x:2")
    assert not await live.gone("other:2:x:2")
    clock.advance(seconds=31)
    assert await live.gone("other:2:x:2")
    assert not await live.gone("never-seen:3:x:3")  # leases of an older release: wait them out
    assert await live.gone("never-seen:3:x:3", missing_is_gone=True)
    await store.liveness.forget_replica("other:2:x:2")
    assert await live.gone("other:2:x:2", missing_is_gone=True)


async def test_an_intent_claimed_without_an_open_action_is_given_back(
    store: Store, client: CodeStreamClient, clock: Clock
) -> None:
    # A process died between claiming and writing the audit row (nothing was sent), and another
    # claim's holder wrote a finished row but could not settle its claim.
    await store.claims.claim(intent_key("git", "no-row"), "req-dead", IN_FLIGHT_CLAIM_SECONDS)
    await store.claims.claim(intent_key("git", "ran"), "req-ran", IN_FLIGHT_CLAIM_SECONDS)
    await store.actions.record(
        ActionRecord(
            kind="git",
            event_id="ran",
            action="rerun",
            actor_id="U1",
            surface="slash",
            status="started",
            request_id="req-ran",
            created_at=T0,
            finished_at=T0,
        )
    )
    recent = intent_key("git", "recent")
    clock.advance(seconds=700)
    await store.claims.claim(recent, "req-recent", IN_FLIGHT_CLAIM_SECONDS)  # may still be on its way
    await reconciler(store, client, "me:1:x:1").round()
    assert await store.claims.get(intent_key("git", "no-row")) is None
    ran = await store.claims.get(intent_key("git", "ran"))
    assert ran is not None and ran.expires_at == clock.now + timedelta(seconds=300)  # its dedupe window
    assert await store.claims.get(recent) is not None
