"""Fixtures of the store's tests: stores on a fresh database of each backend (``backend``), sharing
one controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.store import Store, open_store
from tests.conftest import Backend
from tests.store.common import FakeClock


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
