"""Shared fixtures: a real Code Stream simulator on loopback and a client talking to it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.codestream.auth import VraRefreshTokenProvider
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.simulator import CodeStreamSimulator
from tests.harness import Harness, running_harness

# Fast but real backoff, so retry tests take milliseconds.
FAST_RETRY = RetryPolicy(attempts=4, initial_backoff=0.01, max_backoff=0.05, reconcile_reads=3, reconcile_delay=0.02)
POSTGRES_URL = os.environ.get("BOT_TEST_POSTGRES_URL")


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
        http = httpx.AsyncClient(timeout=timeout)
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
