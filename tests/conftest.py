"""Shared fixtures: a real Code Stream simulator on loopback and a client talking to it, and the
store's database: SQLite, and PostgreSQL when BOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import DropSchema

from bot.codestream.auth import VraRefreshTokenProvider
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.codestream.factory import INTERACTIVE_CONNECTIONS, pooled_http, trusted_cas
from bot.simulator import CodeStreamSimulator
from tests.harness import Harness, running_harness

# Property and fuzz tests draw the same examples every run (a seed per test), so the suite gives
# the same answer each time; HYPOTHESIS_PROFILE=explore draws new ones (with FUZZ_EXAMPLES for
# more of them), which is how new defects are looked for.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Fast but real backoff, so retry tests take milliseconds.
FAST_RETRY = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.05, reconcile_reads=3, reconcile_delay=0.02)
POSTGRES_URL = os.environ.get("BOT_TEST_POSTGRES_URL") or None
POSTGRES_SKIP_REASON = "BOT_TEST_POSTGRES_URL not set: PostgreSQL tests skipped"
needs_postgres = pytest.mark.skipif(POSTGRES_URL is None, reason=POSTGRES_SKIP_REASON)


@pytest.fixture
async def sim() -> AsyncIterator[CodeStreamSimulator]:
    simulator = CodeStreamSimulator(execution_duration=0.3)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


ClientFactory = Callable[..., CodeStreamClient]


@pytest.fixture
async def make_client(sim: CodeStreamSimulator) -> AsyncIterator[ClientFactory]:
    made: list[CodeStreamClient] = []

    def factory(
        *, refresh_token: str = "sim-refresh-token", timeout: float = 5.0, retry: RetryPolicy = FAST_RETRY
    ) -> CodeStreamClient:
        assert sim.base_url is not None
        http = pooled_http(timeout=timeout, verify=trusted_cas(None), connections=INTERACTIVE_CONNECTIONS)
        auth = VraRefreshTokenProvider(http, sim.base_url, SecretStr(refresh_token))
        client = CodeStreamClient(sim.base_url, auth, http=http, retry=retry)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> CodeStreamClient:
    return make_client()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path) as h:
        yield h


@dataclass(frozen=True)
class Backend:
    name: str
    url: str
    schema: str | None


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh, empty database, once on each backend: a SQLite file of the test's own, and a new
    schema in BOT_TEST_POSTGRES_URL's database, dropped afterwards (skipped when it is not set)."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", None)
        return
    if POSTGRES_URL is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    yield Backend("postgres", POSTGRES_URL, schema)
    admin = create_async_engine(POSTGRES_URL, poolclass=NullPool)
    try:
        async with admin.begin() as conn:
            await conn.execute(DropSchema(schema, cascade=True, if_exists=True))
    finally:
        await admin.dispose()
