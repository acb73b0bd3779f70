"""Leases: one holder at a time, extended, expired, taken over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store import Store
from tests.store.common import T0, FakeClock


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
