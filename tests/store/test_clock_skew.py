"""Replicas whose clocks disagree: leases, claims' expiry and the dedupe window are decided on
the database's clock, not each process's. Two stores on one PostgreSQL, the second opened by a
process whose clock is two minutes ahead or behind (its default clock shifted)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest

from bot.store import Store, open_store
from bot.store.schema import utcnow
from tests.conftest import POSTGRES_URL, needs_postgres

pytestmark = needs_postgres
SKEW = timedelta(minutes=2)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    import secrets

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool
    from sqlalchemy.schema import DropSchema

    name = f"t_{secrets.token_hex(6)}"
    yield name
    admin = create_async_engine(str(POSTGRES_URL), poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(DropSchema(name, cascade=True, if_exists=True))
    finally:
        await admin.dispose()


async def replica(schema: str, monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> Store:
    """A store opened as a replica opens it (no clock given), in a process whose clock is off."""
    skewed: Callable[[], datetime] = lambda: utcnow() + shift  # noqa: E731
    with monkeypatch.context() as patch:
        patch.setattr("bot.store.utcnow", skewed)
        return await open_store(str(POSTGRES_URL), schema=schema)


@pytest.mark.parametrize("shift", [SKEW, -SKEW], ids=["ahead", "behind"])
async def test_a_skewed_replica_neither_steals_a_lease_nor_expires_a_claim_early(
    schema: str, monkeypatch: pytest.MonkeyPatch, shift: timedelta
) -> None:
    honest = await open_store(str(POSTGRES_URL), schema=schema)
    skewed = await replica(schema, monkeypatch, shift)
    try:
        # The first to take a lease (or a claim) keeps it for its whole time, whoever's clock is off.
        first, second = (honest, skewed) if shift > timedelta(0) else (skewed, honest)
        assert await first.liveness.acquire_lease("watcher", "first", 30)
        assert not await second.liveness.acquire_lease("watcher", "second", 30)
        assert (await second.liveness.lease_holder("watcher") or ("",))[0] == "first"
        won = await first.claims.claim("intent:git:e1", "first", 60)
        assert won.won
        again = await second.claims.claim("intent:git:e1", "second", 60)
        assert not again.won and again.holder == "first"
        # A dedupe window kept by one is seen, to the second, by the other.
        assert await first.claims.settle("intent:git:e1", "first", 300)
        assert not (await second.claims.claim("intent:git:e1", "second", 60)).won
        # Both say the same "now", within the time it takes to ask.
        assert abs(honest.now() - skewed.now()) < timedelta(seconds=5)
    finally:
        await skewed.close()
        await honest.close()
