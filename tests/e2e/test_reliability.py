"""The fault matrix: every way Code Stream can misbehave, through the Slack surface. For each:
what the user is told, what the audit trail says, that the bot keeps working, and that a rerun
is never posted twice."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.simulator import SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID, Fault
from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, Harness, running_harness, wait_for_rows

EVENT = f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}"
POST_PATH = "/codestream/api/git-events/"


@dataclass(frozen=True)
class Case:
    faults: list[Fault] = field(default_factory=list)
    expire_tokens: bool = False
    says: str = ""  # in the answer the user sees (lower case)
    status: str = "failed"  # the audit row
    error_class: str | None = None
    posts: int = 0  # POSTs Code Stream received: never more than one
    public: bool = False  # answered in the channel (an action happened or may have)


MATRIX = {
    "401-after-token-expiry-refreshes": Case(
        expire_tokens=True, says="rerun started", status="started", posts=1, public=True
    ),
    "401-twice": Case([Fault(path="/codestream/api/", status=401)], says="log in", error_class="AuthenticationFailed"),
    "403": Case(
        [Fault(method="POST", path=POST_PATH, status=403, body={"message": "not a project member"})],
        says="refused",
        error_class="Forbidden",
        posts=1,
    ),
    "404": Case(
        [Fault(method="GET", path=EVENT, status=404, body={"message": "gone"})],
        says="has no git event",
        error_class="NotFound",
    ),
    "429-retry-after-then-ok": Case(
        [Fault(method="GET", path=EVENT, status=429, headers={"Retry-After": "0.2"}, times=1)],
        says="rerun started",
        status="started",
        posts=1,
        public=True,
    ),
    "429-on-the-post": Case(
        [Fault(method="POST", path=POST_PATH, status=429, headers={"Retry-After": "5"})],
        says="rate limit",
        error_class="RateLimited",
        posts=1,
    ),
    "500-on-the-post": Case(
        [Fault(method="POST", path=POST_PATH, status=500, body={"message": "NPE"})],
        says="outcome not known yet",
        status="unknown",
        error_class="ServerError",
        posts=1,
        public=True,  # it may have run: the channel sees "checking", then the outcome
    ),
    "503-on-the-post": Case(
        [Fault(method="POST", path=POST_PATH, status=503)],
        says="outcome not known yet",
        status="unknown",
        error_class="Unavailable",
        posts=1,
        public=True,  # it may have run: the channel sees "checking", then the outcome
    ),
    "503-on-reads": Case([Fault(method="GET", path=EVENT, status=503)], says="unavailable", error_class="Unavailable"),
    "read-timeout-after-the-post-was-received": Case(
        [Fault(method="POST", path=POST_PATH, delay=5, after_processing=True)],
        says="rerun started",
        status="started",
        posts=1,
        public=True,
    ),
    "connection-reset": Case(
        [Fault(method="POST", path=POST_PATH, reset=True)],
        says="outcome not known yet",
        status="unknown",
        error_class="TransportFailure",
        posts=1,
        public=True,
    ),
    "reset-after-processing": Case(
        [Fault(method="POST", path=POST_PATH, reset=True, after_processing=True)],
        says="rerun started",
        status="started",
        posts=1,
        public=True,
    ),
    "garbage-json": Case(
        [Fault(method="GET", path=EVENT, garbage=True)], says="could not read", error_class="BadResponse"
    ),
    "html-error-page": Case(
        [
            Fault(
                method="GET",
                path=EVENT,
                status=200,
                content_type="text/html",
                body="<html><body><h1>Sign in</h1></body></html>",
            )
        ],
        says="text/html",
        error_class="BadResponse",
    ),
    "30s-stall": Case([Fault(method="GET", path=EVENT, delay=30)], says="unavailable", error_class="TransportFailure"),
}


@pytest.mark.parametrize("case", list(MATRIX.values()), ids=list(MATRIX))
async def test_fault_matrix(harness: Harness, case: Case) -> None:
    await harness.send.slash_command(f"show {SAMPLE_FAILED_GIT_ID}")  # log in first, so expiry is real
    await wait_for(lambda: harness.slack.responses)
    seen = len(harness.slack.responses)
    if case.expire_tokens:
        harness.sim.expire_tokens()
    for fault in case.faults:
        harness.sim.inject(fault)

    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
    if case.public:
        [answer] = await wait_for(lambda: [m for m in harness.slack.messages(ALERTS) if m.user == "U0BOT"])
        text = answer.text + json.dumps(answer.blocks)
    else:
        answers = await wait_for(lambda: harness.slack.responses[seen:], timeout=20)
        assert answers[0].action == "ephemeral"
        text = json.dumps(answers[0].body)
    [row] = await wait_for_rows(harness, 1)  # the row is final before the answer is sent
    assert case.says in text.lower()
    assert (row.status, row.error_class) == (case.status, case.error_class)
    assert harness.sim.count("POST", POST_PATH) == case.posts

    # Zero crashes: the bot still answers, and nothing was posted again meanwhile.
    harness.sim.clear_faults()
    await harness.send.slash_command(f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}", user="U0BOB")
    await wait_for(lambda: harness.sim.count("POST", "/codestream/api/gerrit-events/") == 1, timeout=20)
    assert harness.sim.count("POST", POST_PATH) == case.posts


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full: connecting times out (a firewall dropping SYNs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


async def test_connect_timeout(tmp_path: Path, unaccepting_port: int) -> None:
    url = f"http://127.0.0.1:{unaccepting_port}"
    async with running_harness(tmp_path, CODESTREAM_URL=url, CODESTREAM_TIMEOUT="0.5") as harness:
        await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}")
        [answer] = await wait_for(lambda: harness.slack.responses, timeout=20)
        [row] = await wait_for_rows(harness, 1)
        assert "unavailable" in json.dumps(answer.body).lower()
        assert (row.status, row.error_class) == ("failed", "TransportFailure")
        assert harness.sim.requests == []


# --- Slack misbehaving ------------------------------------------------------------------------


async def test_slack_rate_limits_and_5xx_delay_messages_but_lose_none(harness: Harness) -> None:
    harness.slack.fail("chat.postMessage", error="ratelimited", status=429, retry_after=1, times=2)
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}")
    await wait_for(lambda: [m for m in harness.slack.messages(ALERTS) if m.user == "U0BOT"], timeout=15)
    harness.slack.fail("chat.postMessage", error="internal_error", status=503, times=2)
    await harness.send.slash_command(f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}")
    await wait_for(lambda: len([m for m in harness.slack.messages(ALERTS) if m.user == "U0BOT"]) == 2, timeout=15)
    calls = harness.slack.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200, 503, 503, 200]


async def test_expired_response_url_falls_back_to_the_channel(harness: Harness) -> None:
    url = harness.slack.new_response_url(channel=ALERTS, user="U0ALICE")
    harness.slack.expire_response_url(url)
    resp = await harness.send.slash_command(f"show {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", response_url=url)
    assert resp.status_code == 200
    [ephemeral] = await wait_for(lambda: harness.slack.calls_to("chat.postEphemeral"))
    assert ephemeral.args["user"] == "U0ALICE" and ephemeral.ok
