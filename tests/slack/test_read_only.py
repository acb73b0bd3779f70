"""Commands and requests that only read (help, usage errors, show, list) and requests refused
before any work (forged or stale signatures, oversized bodies), through signed HTTP. Nothing
here changes state, so the module's tests share one running bot: each asserts on what happened
after it began."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.simulator import SAMPLE_FAILED_DOCKER_ID, SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import wait_for
from bot.simulator.slack_models import ResponsePost
from bot.slack.render.buttons import ACTION_RERUN
from tests.harness import ALERTS, Harness, running_harness

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("read-only")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path_factory.mktemp("read-only")) as h:
        yield h


class Since:
    """What the bot did from now on: Code Stream requests, Slack responses, messages, audit rows."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.requests = len(h.sim.requests)
        self.responses = len(h.slack.responses)
        self.calls = len(h.slack.calls)

    def new_requests(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.h.sim.requests[self.requests :]]

    def new_responses(self) -> list[ResponsePost]:
        return self.h.slack.responses[self.responses :]

    def new_posts(self) -> list[str]:
        return [c.method for c in self.h.slack.calls[self.calls :] if c.method == "chat.postMessage"]


async def test_help_and_usage_errors_are_ephemeral_and_never_reach_code_stream(shared: Harness) -> None:
    since = Since(shared)
    for text in ["help", "", "deploy prod", "rerun", "rerun not-an-id", "rerun ../../iaas/api/x"]:
        resp = await shared.send.slash_command(text)
        assert resp.status_code == 200
        body = resp.json()
        assert body["response_type"] == "ephemeral"
        assert body["text"]
    assert since.new_requests() == []
    assert since.new_posts() == []


async def test_show_is_ephemeral_and_does_not_act(shared: Harness) -> None:
    since = Since(shared)
    await shared.send.slash_command(f"show {SAMPLE_FAILED_GIT_ID}")
    [response] = await wait_for(since.new_responses)
    assert response.action == "ephemeral"
    assert "Fix rounding in invoice totals" in json.dumps(response.body)
    assert not [r for r in since.new_requests() if r.startswith("POST /codestream/")]
    assert await shared.store.actions.list() == []


async def test_list_shows_failed_events_with_buttons(shared: Harness) -> None:
    since = Since(shared)
    await shared.send.slash_command("list")
    [response] = await wait_for(since.new_responses)
    body = json.dumps(response.body)
    assert response.action == "ephemeral"
    for event_id in (SAMPLE_FAILED_GIT_ID, SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_DOCKER_ID):
        assert event_id in body
    assert ACTION_RERUN in body
    assert not [r for r in since.new_requests() if r.startswith("POST /codestream/")]


async def test_forged_and_stale_signatures_are_rejected(shared: Harness) -> None:
    since = Since(shared)
    body = f"command=%2Fcodestream&text=rerun+{SAMPLE_FAILED_GIT_ID}&user_id=U0ALICE&channel_id={ALERTS}".encode()
    forged = await shared.send.raw(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    assert forged.status_code == 401
    stale = await shared.send.raw(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 360)
    assert stale.status_code == 401
    missing = await shared.send.raw(body, "application/x-www-form-urlencoded", signature="")
    assert missing.status_code == 401
    assert since.new_requests() == []


async def test_oversized_body_is_rejected_early(shared: Harness) -> None:
    resp = await shared.send.raw(b"x" * 2_000_000, "application/x-www-form-urlencoded")
    assert resp.status_code == 413
