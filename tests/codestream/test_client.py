"""The Code Stream client against the simulator over real loopback HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from bot.codestream.auth import CspApiTokenProvider, StaticTokenProvider, VraRefreshTokenProvider
from bot.codestream.client import CodeStreamClient, RetryPolicy
from bot.codestream.errors import (
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    Forbidden,
    InvalidId,
    NotFound,
    RateLimited,
    ServerError,
    Unavailable,
)
from bot.codestream.models import EventKind, GerritEvent, GitEvent, parse_event
from bot.codestream.transport import TransportFailure
from bot.simulator import (
    SAMPLE_FAILED_DOCKER_ID,
    SAMPLE_FAILED_GERRIT_ID,
    SAMPLE_FAILED_GIT_ID,
    CodeStreamSimulator,
    Fault,
)
from bot.simulator.slack_api import wait_for
from tests.conftest import FAST_RETRY, ClientFactory

GIT_EVENT = f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}"


async def test_about_and_api_version_on_every_call(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    about = await client.about()
    assert about.latest_api_version == "2019-10-17"
    api_calls = [r for r in sim.requests if r.path.startswith("/codestream/api")]
    assert api_calls and all(r.query.get("apiVersion") == "2019-10-17" for r in api_calls)
    assert all(r.headers.get("Authorization", "").startswith("Bearer ") for r in api_calls)


@pytest.mark.parametrize(
    ("kind", "event_id", "path"),
    [
        ("git", SAMPLE_FAILED_GIT_ID, "git-events"),
        ("gerrit", SAMPLE_FAILED_GERRIT_ID, "gerrit-events"),
        ("docker", SAMPLE_FAILED_DOCKER_ID, "registry-events"),
    ],
)
async def test_get_resume_and_rerun_each_kind(
    client: CodeStreamClient, sim: CodeStreamSimulator, kind: EventKind, event_id: str, path: str
) -> None:
    event = await client.get_event(kind, event_id)
    assert event.id == event_id and event.kind == kind
    index_before = event.execution_index or 0
    rerun = await client.rerun(kind, event_id)
    assert rerun.state == "succeeded" and rerun.event is not None
    assert rerun.event.execution_index == index_before + 1
    resume = await client.resume(kind, event_id)
    assert resume.state == "succeeded" and resume.event is not None
    assert resume.event.execution_index == index_before + 2
    posts = [r for r in sim.requests if r.method == "POST" and r.path == f"/codestream/api/{path}/{event_id}"]
    assert [r.query["action"] for r in posts] == ["Rerun", "Resume"]
    assert rerun.event.execution_id is not None
    execution = await client.get_execution(rerun.event.execution_id)
    assert execution.index == index_before + 1
    assert execution.status in ("RUNNING", "COMPLETED")


async def test_list_with_filter_order_and_paging(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    sim.generate("git", n=230, failed=20)
    page = await client.list_events("git", filter="executionStatus eq 'FAILED'", orderby="updatedAt desc", top=7)
    assert page.count == 7 and len(page.events) == 7
    assert all(isinstance(e, GitEvent) and e.execution_status == "FAILED" for e in page.events)
    assert page.total_count is not None and page.total_count >= 20
    stamps = [e.update_time_micros or 0 for e in page.events]
    assert stamps == sorted(stamps, reverse=True)

    seen: list[str] = []
    async for chunk in client.iter_events("git", orderby="updatedAt desc", page_size=50):
        seen.extend(e.id or "" for e in chunk.events)
    total = (await client.list_events("git", top=1)).total_count
    assert len(seen) == len(set(seen)) == total
    last = [r for r in sim.requests if r.path == "/codestream/api/git-events"][-2]
    assert last.query["$top"] == "50" and last.query["$orderby"] == "updatedAt desc"

    gerrit = await client.list_events("gerrit")
    assert all(isinstance(e, GerritEvent) for e in gerrit.events)


async def test_unknown_event_is_not_found_and_nothing_is_posted(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound) as caught:
        await client.rerun("git", missing)
    assert missing in caught.value.user_message
    assert sim.count("POST", "/codestream/api/") == 0


@pytest.mark.parametrize(
    "bad_id",
    [
        "../../iaas/api/x",
        "%2e%2e",
        "",
        " ",
        "x" * 500,
        "..",
        ".hidden",
        "a b",
        "a%2Fb",
        "8365ef3b-8bf3-48aa-bd5d-7113fcff827c/../x",
        "8365ef3b-8bf3-48aa-bd5d-7113fcff827c?action=Rerun",
    ],
)
async def test_bad_ids_are_rejected_without_a_request(
    client: CodeStreamClient, sim: CodeStreamSimulator, bad_id: str
) -> None:
    with pytest.raises(InvalidId):
        await client.get_event("git", bad_id)
    with pytest.raises(InvalidId):
        await client.rerun("git", bad_id)
    with pytest.raises(InvalidId):
        await client.get_execution(bad_id)
    assert sim.requests == []


@pytest.mark.parametrize("server_id", ["8365ef3b8bf348aabd5d7113fcff827c", "8365ef3b-8bf3-48aa-bd5d", "exec_42.v2"])
async def test_ids_code_stream_gave_in_another_shape_are_sent_as_one_path_segment(
    client: CodeStreamClient, sim: CodeStreamSimulator, server_id: str
) -> None:
    """Code Stream's own ids need not be UUIDs: any safe path segment is asked for as it is."""
    with pytest.raises(NotFound):
        await client.get_execution(server_id)
    assert [r.path for r in sim.requests if r.method == "GET"] == [f"/codestream/api/executions/{server_id}"]


# --- authentication ---------------------------------------------------------------------------


async def test_one_login_serves_many_requests(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    for _ in range(5):
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert sim.logins == 1


async def test_single_flight_login_under_50_concurrent_calls(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    sim.inject(Fault(method="POST", path="^/iaas/api/login$", delay=0.2))  # a slow login widens the race
    results = await asyncio.gather(*(client.get_event("git", SAMPLE_FAILED_GIT_ID) for _ in range(50)))
    assert len(results) == 50
    assert sim.logins == 1
    assert sim.count("POST", "/iaas/api/login") == 1


async def test_expired_token_is_refreshed_once_on_401(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    sim.expire_tokens()
    await asyncio.gather(*(client.get_event("git", SAMPLE_FAILED_GIT_ID) for _ in range(20)))
    assert sim.logins == 2


async def test_token_is_refreshed_before_it_expires(sim: CodeStreamSimulator) -> None:
    now = [1000.0]
    sim.token_lifetime = 600.0
    assert sim.base_url is not None
    async with httpx.AsyncClient() as http:
        auth = VraRefreshTokenProvider(http, sim.base_url, SecretStr("sim-refresh-token"))
        auth._clock = lambda: now[0]
        client = CodeStreamClient(sim.base_url, auth, http=http, retry=FAST_RETRY)
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        now[0] += 560  # within the lifetime but past the refresh point (lifetime - 10 %)
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        assert sim.logins == 2
    # Refreshed ahead of time: no request was refused and resent.
    assert sim.count("GET", GIT_EVENT) == 2


async def test_second_401_is_an_authentication_error(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    sim.inject(Fault(path=GIT_EVENT + "$", status=401, body={"message": "Unauthorized"}))
    with pytest.raises(AuthenticationFailed):
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert sim.logins == 2  # exactly one refresh, then give up


async def test_wrong_refresh_token_is_an_authentication_error(make_client: ClientFactory) -> None:
    client = make_client(refresh_token="wrong")
    with pytest.raises(AuthenticationFailed) as caught:
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert "wrong" not in str(caught.value)
    assert caught.value.status == 400


async def test_csp_api_token_and_fallback_to_refresh_token_field(sim: CodeStreamSimulator) -> None:
    assert sim.base_url is not None
    async with httpx.AsyncClient() as http:
        auth = CspApiTokenProvider(http, sim.base_url, SecretStr("sim-api-token"))
        client = CodeStreamClient(sim.base_url, auth, http=http, retry=FAST_RETRY)
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        csp = [r for r in sim.requests if r.path.endswith("/api-tokens/authorize")]
        assert [r.body.decode().split("=")[0] for r in csp] == ["api_token"]

        sim.csp_accepts_api_token = False
        sim.reset_requests()
        old = CspApiTokenProvider(http, sim.base_url, SecretStr("sim-api-token"))
        client = CodeStreamClient(sim.base_url, old, http=http, retry=FAST_RETRY)
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        sim.expire_tokens()
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        csp = [r for r in sim.requests if r.path.endswith("/api-tokens/authorize")]
        # First login tries api_token then falls back; the next one remembers the field.
        assert [r.body.decode().split("=")[0] for r in csp] == ["api_token", "refresh_token", "refresh_token"]


async def test_static_token_cannot_refresh(sim: CodeStreamSimulator) -> None:
    assert sim.base_url is not None
    async with httpx.AsyncClient() as http:
        client = CodeStreamClient(
            sim.base_url, StaticTokenProvider(SecretStr("not-a-token")), http=http, retry=FAST_RETRY
        )
        with pytest.raises(AuthenticationFailed) as caught:
            await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        assert "CODESTREAM_TOKEN" in caught.value.user_message
        assert sim.logins == 0


# --- errors and retries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "gets"),
    [
        (Fault(path=GIT_EVENT, status=403, body={"message": "User is not a member of project"}), Forbidden, 1),
        (Fault(path=GIT_EVENT, status=404, body={"message": "gone"}), NotFound, 1),
        (Fault(path=GIT_EVENT, status=400, body={"message": "bad"}), BadRequest, 1),
        (Fault(path=GIT_EVENT, status=500, body={"message": "NullPointerException"}), ServerError, 1),
        (Fault(path=GIT_EVENT, status=503, body="Service Unavailable"), Unavailable, 4),
        (Fault(path=GIT_EVENT, status=429, headers={"Retry-After": "0"}), RateLimited, 4),
        (Fault(path=GIT_EVENT, status=429, headers={"Retry-After": "3600"}), RateLimited, 1),
        (Fault(path=GIT_EVENT, garbage=True), BadResponse, 1),
        (
            Fault(path=GIT_EVENT, status=200, body="<html><body>Login</body></html>", content_type="text/html"),
            BadResponse,
            1,
        ),
        (Fault(path=GIT_EVENT, reset=True), Unavailable, 4),
        (Fault(path=GIT_EVENT, delay=2.0), Unavailable, 4),
    ],
    ids=[
        "403",
        "404",
        "400",
        "500",
        "503",
        "429-retry-after-0",
        "429-retry-after-too-long",
        "garbage-json",
        "html-page",
        "connection-reset",
        "read-timeout",
    ],
)
async def test_each_error_type_and_get_retries(
    make_client: ClientFactory, sim: CodeStreamSimulator, fault: Fault, error: type[Exception], gets: int
) -> None:
    # The read timeout must stay below the fault's delay (2 s), and long enough that each attempt
    # reaches the simulator on a busy machine (0.3 s once timed out before the 4th got there).
    client = make_client(timeout=1.0)
    sim.inject(fault)
    with pytest.raises(error) as caught:
        await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    # An attempt the client gave up on may reach the simulator's log a moment later.
    await wait_for(lambda: sim.count("GET", GIT_EVENT) >= gets, timeout=5.0)
    assert sim.count("GET", GIT_EVENT) == gets
    message = getattr(caught.value, "user_message", "")
    assert message and "Bearer" not in str(caught.value)
    if isinstance(caught.value, Forbidden):
        assert caught.value.server_message == "User is not a member of project"


async def test_get_recovers_after_transient_503s(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    sim.inject(Fault(path=GIT_EVENT, status=503, times=2))
    event = await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert event.id == SAMPLE_FAILED_GIT_ID
    assert sim.count("GET", GIT_EVENT) == 3


async def test_retry_after_is_honoured(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    sim.inject(Fault(path=GIT_EVENT, status=429, headers={"Retry-After": "0.3"}, times=1))
    await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    gets = [r for r in sim.requests if r.method == "GET" and r.path == GIT_EVENT]
    assert len(gets) == 2
    assert gets[1].at - gets[0].at >= 0.3


async def test_post_rejected_with_4xx_is_not_retried(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    sim.inject(Fault(method="POST", path=GIT_EVENT, status=403, body={"message": "no"}))
    with pytest.raises(Forbidden):
        await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert sim.count("POST", GIT_EVENT) == 1


async def test_post_after_a_401_is_resent_once_with_a_fresh_token(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    sim.expire_tokens()
    result = await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert result.state == "succeeded"
    # The GET before the POST met the 401; the POST went out once, with the new token.
    assert sim.count("POST", GIT_EVENT) == 1
    assert sim.logins == 2


# --- ambiguous POSTs --------------------------------------------------------------------------


async def test_lost_response_after_the_rerun_happened_reconciles_to_succeeded(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    before = sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"]
    sim.inject(Fault(method="POST", path=GIT_EVENT, reset=True, after_processing=True))
    result = await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert result.state == "succeeded" and result.reconciled
    assert result.event is not None and result.event.execution_index == before + 1
    assert sim.count("POST", GIT_EVENT) == 1


async def test_timeout_after_the_rerun_happened_reconciles_to_succeeded(
    make_client: ClientFactory, sim: CodeStreamSimulator
) -> None:
    client = make_client(timeout=0.3)
    sim.inject(Fault(method="POST", path=GIT_EVENT, delay=2.0, after_processing=True))
    result = await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert result.state == "succeeded"
    assert isinstance(result.error, TransportFailure) and result.error.request_sent
    assert sim.count("POST", GIT_EVENT) == 1


async def test_request_lost_after_it_was_sent_is_unknown_never_not_started(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    # The connection broke after the request left: a slow Code Stream may still apply it, so
    # "no new execution yet" must not be reported as "did not start".
    before = sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"]
    sim.inject(Fault(method="POST", path=GIT_EVENT, reset=True))
    result = await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert result.state == "unknown" and result.reconciled
    assert isinstance(result.error, TransportFailure) and result.error.request_sent
    assert sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"] == before
    assert sim.count("POST", GIT_EVENT) == 1


async def test_connection_refused_post_is_not_started_without_a_read_back(sim: CodeStreamSimulator) -> None:
    async with httpx.AsyncClient(timeout=1.0) as http:
        client = CodeStreamClient(
            "http://127.0.0.1:9",
            StaticTokenProvider(SecretStr("t")),
            http=http,
            retry=RetryPolicy(attempts=2, initial_backoff=0.01, max_backoff=0.01),
        )
        before = parse_event("git", sim.get_event("git", SAMPLE_FAILED_GIT_ID))
        result = await client.act("git", SAMPLE_FAILED_GIT_ID, "Rerun", before=before)
        assert result.state == "not_started" and not result.reconciled
        assert isinstance(result.error, TransportFailure) and not result.error.request_sent


async def test_gateway_error_on_post_is_reconciled_not_retried(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    sim.inject(Fault(method="POST", path=GIT_EVENT, status=504, after_processing=True))
    result = await client.rerun("git", SAMPLE_FAILED_GIT_ID)
    assert result.state == "succeeded" and result.reconciled
    assert sim.count("POST", GIT_EVENT) == 1


async def test_unreadable_outcome_is_unknown(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    before = await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    sim.inject(Fault(method="POST", path=GIT_EVENT, reset=True, after_processing=True))
    sim.inject(Fault(method="GET", path=GIT_EVENT, status=503))
    result = await client.act("git", SAMPLE_FAILED_GIT_ID, "Rerun", before=before)
    assert result.state == "unknown"
    assert result.event is None
    assert sim.count("POST", GIT_EVENT) == 1


async def test_connection_refused_post_is_safe_to_retry_and_reported(sim: CodeStreamSimulator) -> None:
    # Nothing listens on the port: the request never left, so retrying cannot duplicate a run.
    async with httpx.AsyncClient(timeout=1.0) as http:
        client = CodeStreamClient(
            "http://127.0.0.1:9",
            StaticTokenProvider(SecretStr("t")),
            http=http,
            retry=RetryPolicy(attempts=2, initial_backoff=0.01, max_backoff=0.01),
        )
        with pytest.raises(TransportFailure) as caught:
            await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        assert caught.value.request_sent is False


async def test_a_single_attempt_read_for_callers_with_their_own_backoff(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    from bot.simulator import SAMPLE_FAILED_EXECUTION_ID

    sim.inject(Fault(path=f"/codestream/api/executions/{SAMPLE_FAILED_EXECUTION_ID}", status=503))
    with pytest.raises(Unavailable):
        await client.get_execution(SAMPLE_FAILED_EXECUTION_ID, retry=False)
    assert sim.count("GET", "/codestream/api/executions/") == 1


async def test_an_unreadable_2xx_never_passes_the_old_execution_off_as_the_new_one(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    before = await client.get_event("git", SAMPLE_FAILED_GIT_ID)
    sim.inject(Fault(method="POST", path=GIT_EVENT, status=200, garbage=True, times=1))  # not applied yet
    result = await client.act("git", SAMPLE_FAILED_GIT_ID, "Rerun", before=before)
    assert result.state == "succeeded" and result.event is None


async def test_an_oversized_answer_is_a_clear_error_and_nothing_more_is_read(sim: CodeStreamSimulator) -> None:
    from bot.codestream.transport import ResponseTooLarge

    documents = {f"/codestream/api/git-events/{i}": {"id": str(i), "name": "x" * 200} for i in range(20_000)}
    body = {"count": len(documents), "links": list(documents), "documents": documents}  # ~5 MB
    sim.inject(Fault(method="GET", path="/codestream/api/git-events", status=200, body=body, times=1))
    assert sim.base_url is not None
    async with httpx.AsyncClient(timeout=10) as http:
        auth = VraRefreshTokenProvider(http, sim.base_url, SecretStr("sim-refresh-token"))
        client = CodeStreamClient(sim.base_url, auth, http=http, retry=FAST_RETRY, max_response_bytes=1024 * 1024)
        with pytest.raises(ResponseTooLarge, match="larger than 1 MB"):
            await client.list_events("git", top=50)
        assert (await client.list_events("git", top=50)).events  # the next call is fine


async def test_a_server_ignoring_top_gives_no_more_documents_than_asked(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    documents = {f"/codestream/api/git-events/{i}": {"id": f"{i:08d}-0000-4000-8000-000000000000"} for i in range(120)}
    body = {"count": 120, "links": list(documents), "documents": documents}
    sim.inject(Fault(method="GET", path="/codestream/api/git-events", status=200, body=body, times=1))
    page = await client.list_events("git", top=50)
    assert len(page.events) == 50


async def test_an_oversized_answer_to_the_post_is_read_back_not_called_failed(
    sim: CodeStreamSimulator,
) -> None:
    assert sim.base_url is not None
    async with httpx.AsyncClient(timeout=10) as http:
        auth = VraRefreshTokenProvider(http, sim.base_url, SecretStr("sim-refresh-token"))
        client = CodeStreamClient(sim.base_url, auth, http=http, retry=FAST_RETRY, max_response_bytes=64 * 1024)
        before = await client.get_event("git", SAMPLE_FAILED_GIT_ID)
        sim.inject(Fault(method="POST", path=GIT_EVENT, status=200, body="x" * 200_000, after_processing=True, times=1))
        result = await client.act("git", SAMPLE_FAILED_GIT_ID, "Rerun", before=before)
        assert result.state == "succeeded" and result.event is not None
        assert sim.count("POST", GIT_EVENT) == 1
