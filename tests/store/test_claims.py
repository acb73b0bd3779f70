"""Claims: the first caller for a key wins, for a while; across coroutines, engines and processes."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store, open_store
from tests.conftest import Backend
from tests.store.common import T0, FakeClock

REPO_ROOT = Path(__file__).resolve().parents[2]


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
