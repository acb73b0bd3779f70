"""The Code Stream simulator, exercised over real HTTP on loopback with httpx."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from bot.simulator import (
    SAMPLE_COMPLETED_GIT_2_ID,
    SAMPLE_COMPLETED_GIT_ID,
    SAMPLE_FAILED_DOCKER_ID,
    SAMPLE_FAILED_EXECUTION_ID,
    SAMPLE_FAILED_GERRIT_ID,
    SAMPLE_FAILED_GIT_ID,
    SAMPLE_TRIGGER_FAILED_GIT_ID,
    TRIGGER_FAILURE_MESSAGE,
    CodeStreamSimulator,
    Fault,
    serve_forever,
)

API = "/codestream/api"
GIT = f"{API}/git-events"
LOGIN = "/iaas/api/login"
CSP = "/csp/gateway/am/api/auth/api-tokens/authorize"
HTML_ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


# -- helpers ---------------------------------------------------------------------------------


async def wait_until(condition: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    """Poll `condition` until it holds; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


async def login(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post(LOGIN, json={"refreshToken": "sim-refresh-token"})
    assert r.status_code == 200
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
async def sim() -> AsyncIterator[CodeStreamSimulator]:
    simulator = CodeStreamSimulator(execution_duration=0.2)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: CodeStreamSimulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.base_url is not None
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0) as c:
        yield c


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client)


# -- logins ----------------------------------------------------------------------------------


async def test_vra_login_issues_a_jwt_shaped_bearer_token(sim: CodeStreamSimulator, client: httpx.AsyncClient) -> None:
    r = await client.post(LOGIN, json={"refreshToken": "sim-refresh-token"})
    assert r.status_code == 200
    body = r.json()
    assert body["tokenType"] == "Bearer"
    assert jwt_part(body["token"], 0) == {"alg": "none", "typ": "JWT"}
    claims = jwt_part(body["token"], 1)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == pytest.approx(8 * 3600, abs=1)
    assert claims["sub"] and claims["jti"]
    assert sim.logins == 1


@pytest.mark.parametrize("payload", [{"refreshToken": "wrong-secret-value"}, {}, "not json"])
async def test_vra_login_rejects_without_echoing_the_token(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, payload: Any
) -> None:
    kwargs: dict[str, Any] = {"content": payload} if isinstance(payload, str) else {"json": payload}
    r = await client.post(LOGIN, **kwargs)
    assert r.status_code == 400
    assert r.json() == {"message": "Invalid refresh token", "statusCode": 400, "errorCode": 400}
    assert "wrong-secret-value" not in r.text
    assert sim.logins == 0


@pytest.mark.parametrize("field", ["api_token", "refresh_token"])
async def test_csp_authorize_accepts_the_api_token_in_either_field(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, field: str
) -> None:
    r = await client.post(CSP, data={field: "sim-api-token"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 8 * 3600
    assert isinstance(body["scope"], str)
    about = await client.get(f"{API}/about", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert about.status_code == 200
    assert sim.logins == 1


async def test_csp_authorize_rejects_a_wrong_token(client: httpx.AsyncClient) -> None:
    r = await client.post(CSP, data={"api_token": "not-the-token"})
    assert r.status_code == 400
    assert r.json()["message"] == "invalid_grant: Invalid refresh token"
    assert "not-the-token" not in r.text


async def test_older_csp_only_accepts_refresh_token_field() -> None:
    async with CodeStreamSimulator(csp_accepts_api_token=False, seed=False) as old:
        assert old.base_url is not None
        async with httpx.AsyncClient(base_url=old.base_url) as c:
            r = await c.post(CSP, data={"api_token": "sim-api-token"})
            assert r.status_code == 400
            assert r.json()["message"] == "Missing refresh_token parameter"
            r = await c.post(CSP, data={"refresh_token": "sim-api-token"})
            assert r.status_code == 200
            assert old.logins == 1


# -- bearer tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic c2ltOnNpbQ=="])
async def test_codestream_api_requires_a_valid_bearer_token(client: httpx.AsyncClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for path in (f"{API}/about", GIT, f"{GIT}/{SAMPLE_FAILED_GIT_ID}", f"{API}/no-such-thing"):
        r = await client.get(path, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"message": "Unauthorized", "statusCode": 401}


async def test_tokens_expire_after_their_lifetime(sim: CodeStreamSimulator, client: httpx.AsyncClient) -> None:
    sim.token_lifetime = 0.3
    auth = await login(client)
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 200

    async def rejected() -> bool:
        return (await client.get(f"{API}/about", headers=auth)).status_code == 401

    await wait_until(rejected)


async def test_expire_tokens_invalidates_every_issued_token(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 200
    sim.expire_tokens()
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 401
    fresh = await login(client)
    assert (await client.get(f"{API}/about", headers=fresh)).status_code == 200
    assert sim.logins == 2


async def test_about(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get(f"{API}/about", headers=auth)
    assert r.json() == {
        "latestApiVersion": "2019-10-17",
        "supportedApis": [
            {
                "apiVersion": "2019-10-17",
                "documentationLink": "/codestream/api/swagger/swagger-ui.html?urls.primaryName=2019-10-17",
                "deprecationPolicy": None,
            }
        ],
    }


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get("/nowhere")
    assert r.status_code == 404
    assert r.json()["statusCode"] == 404
    r = await client.get(f"{API}/pipelines-that-do-not-exist", headers=auth)
    assert r.status_code == 404
    r = await client.put(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", headers=auth)
    assert r.status_code == 405
    assert r.json()["statusCode"] == 405


# -- lists -----------------------------------------------------------------------------------


async def test_list_shape_and_default_order(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.get(GIT, headers=auth, params={"apiVersion": "2019-10-17"})
    body = r.json()
    assert set(body) == {"count", "totalCount", "links", "documents"}
    assert body["count"] == body["totalCount"] == 4
    assert list(body["documents"]) == body["links"]  # keyed by link, in page order
    names = [body["documents"][link]["name"] for link in body["links"]]
    assert names == sorted(names, reverse=True)  # the spec's default: name desc
    for link, doc in body["documents"].items():
        assert doc["_link"] == link == f"{GIT}/{doc['id']}"


async def test_list_paging_with_top_skip_and_page(sim: CodeStreamSimulator, client: httpx.AsyncClient) -> None:
    auth = await login(client)
    sim.generate("git", n=30)
    everything = (await client.get(GIT, headers=auth, params={"$top": "100"})).json()["links"]
    assert len(everything) == 34
    first = (await client.get(GIT, headers=auth)).json()
    assert first["count"] == 25 and first["totalCount"] == 34  # default $top
    page = (await client.get(GIT, headers=auth, params={"$top": "5", "$skip": "3"})).json()
    assert page["links"] == everything[3:8]
    page = (await client.get(GIT, headers=auth, params={"$top": "5", "page": "2"})).json()
    assert page["links"] == everything[10:15]
    past_end = (await client.get(GIT, headers=auth, params={"$skip": "100"})).json()
    assert past_end["count"] == 0 and past_end["totalCount"] == 34 and past_end["documents"] == {}
    bad = await client.get(GIT, headers=auth, params={"$top": "ten"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("executionStatus eq 'FAILED'", {SAMPLE_FAILED_GIT_ID}),
        ("message ne null", {SAMPLE_TRIGGER_FAILED_GIT_ID}),
        ("project eq 'Payments' and executionIndex ge 6", {SAMPLE_FAILED_GIT_ID}),
        ("executionIndex lt 6", {SAMPLE_COMPLETED_GIT_ID}),
        (
            "(repo eq 'storefront-web' or repo eq 'inventory-service') and targetBranch ne 'main'",
            {SAMPLE_TRIGGER_FAILED_GIT_ID},
        ),
        ("startswith(subject, 'Fix') or substringof('CSV', subject)", {SAMPLE_FAILED_GIT_ID, SAMPLE_COMPLETED_GIT_ID}),
        ("toupper(pipeline) EQ 'STOREFRONT-CI'", {SAMPLE_COMPLETED_GIT_2_ID}),
        ("not (executionStatus eq 'COMPLETED') and executionStatus ne null", {SAMPLE_FAILED_GIT_ID}),
        ("subject eq 'It''s quoted'", set()),
    ],
)
async def test_list_filter(
    client: httpx.AsyncClient, auth: dict[str, str], expression: str, expected: set[str]
) -> None:
    r = await client.get(GIT, headers=auth, params={"$filter": expression})
    assert r.status_code == 200, r.text
    docs = r.json()["documents"].values()
    assert {d["id"] for d in docs} == expected
    assert r.json()["totalCount"] == len(expected)


@pytest.mark.parametrize(
    "expression",
    ["nosuchfield eq 'x'", "executionStatus eq", "executionStatus = 'FAILED'", "(name eq 'a'", "name eq 'a' b"],
)
async def test_invalid_filter_is_a_400(client: httpx.AsyncClient, auth: dict[str, str], expression: str) -> None:
    r = await client.get(GIT, headers=auth, params={"$filter": expression})
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid filter"


@pytest.mark.parametrize("orderby", ["updatedAt desc", "_updateTimeInMicros desc"])
async def test_orderby_newest_first(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str], orderby: str
) -> None:
    sim.update_event("git", SAMPLE_COMPLETED_GIT_ID, subject="touched")  # now the newest
    body = (await client.get(GIT, headers=auth, params={"$orderby": orderby})).json()
    stamps = [body["documents"][link]["_updateTimeInMicros"] for link in body["links"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["links"][0] == f"{GIT}/{SAMPLE_COMPLETED_GIT_ID}"
    ascending = (await client.get(GIT, headers=auth, params={"$orderby": orderby.replace("desc", "asc")})).json()
    assert ascending["links"] == list(reversed(body["links"]))


async def test_orderby_tolerates_mixed_types_and_rejects_unknown_fields(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # timeStampInMicros is a date string on one seeded event and an int64 on the others.
    r = await client.get(GIT, headers=auth, params={"$orderby": "timeStampInMicros desc, name"})
    assert r.status_code == 200 and r.json()["count"] == 4
    r = await client.get(GIT, headers=auth, params={"$orderby": "bogus desc"})
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid orderby"


# -- single events and seed data -------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "event_id", "label"),
    [
        ("git-events", SAMPLE_FAILED_GIT_ID, "Git Event"),
        ("gerrit-events", SAMPLE_FAILED_GERRIT_ID, "Gerrit Event"),
        ("registry-events", SAMPLE_FAILED_DOCKER_ID, "Docker Registry Event"),
    ],
)
async def test_get_event_and_404(
    client: httpx.AsyncClient, auth: dict[str, str], segment: str, event_id: str, label: str
) -> None:
    r = await client.get(f"{API}/{segment}/{event_id}", headers=auth)
    assert r.status_code == 200
    assert r.json()["id"] == event_id
    assert r.json()["executionStatus"] == "FAILED"
    r = await client.get(f"{API}/{segment}/nope", headers=auth)
    assert r.status_code == 404
    assert r.json() == {"message": f"{label} with id nope not found", "statusCode": 404}


async def test_seed_data_reproduces_the_specs_contradictions(sim: CodeStreamSimulator) -> None:
    failed = sim.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert (failed["pipeline"], failed["project"], failed["repo"], failed["targetBranch"]) == (
        "payments-ci",
        "Payments",
        "payments-api",
        "main",
    )
    assert failed["subject"] == "Fix rounding in invoice totals"
    assert failed["executionIndex"] == 6
    assert failed["executionLink"] == f"{API}/executions/{SAMPLE_FAILED_EXECUTION_ID}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", failed["timeStampInMicros"])
    assert failed["serverURL"]["host"] == "github.example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00", failed["updatedAt"])
    assert re.fullmatch(r"[0-9a-f]{40}", failed["commitId"])

    completed = sim.get_event("git", SAMPLE_COMPLETED_GIT_ID)
    assert isinstance(completed["timeStampInMicros"], int)
    assert isinstance(completed["serverURL"], str)
    other = sim.get_event("git", SAMPLE_COMPLETED_GIT_2_ID)
    assert "serverURL" not in other
    assert "eventSource" in other  # not in the spec

    trigger = sim.get_event("git", SAMPLE_TRIGGER_FAILED_GIT_ID)
    assert trigger["message"] == TRIGGER_FAILURE_MESSAGE
    assert "executionLink" not in trigger and "executionIndex" not in trigger

    gerrit = sim.get_event("gerrit", SAMPLE_FAILED_GERRIT_ID)
    assert {"branch", "changeNumber", "patchSetNumber", "gerritProject", "listener", "subject"} <= set(gerrit)
    docker = sim.get_event("docker", SAMPLE_FAILED_DOCKER_ID)
    assert {"imageName", "tag", "repoNamespace", "repo"} <= set(docker)
    assert sim.get_execution(SAMPLE_FAILED_EXECUTION_ID)["status"] == "FAILED"


async def test_add_event_fills_defaults_and_returns_a_copy(sim: CodeStreamSimulator) -> None:
    ev = sim.add_event("git", repo="billing", executionStatus="FAILED", owner=None)
    assert ev["repo"] == "billing" and "owner" not in ev
    assert ev["_link"] == f"{GIT}/{ev['id']}"
    assert sim.get_execution(ev["executionLink"].rsplit("/", 1)[1])["status"] == "FAILED"
    ev["repo"] = "mutated"
    assert sim.get_event("git", ev["id"])["repo"] == "billing"
    with pytest.raises(KeyError):
        sim.get_event("git", "missing")
    with pytest.raises(ValueError, match="unknown event kind"):
        sim.add_event("svn")


# -- resume / rerun and executions -----------------------------------------------------------


async def test_rerun_creates_executions_with_increasing_index(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    before = sim.get_event("git", SAMPLE_FAILED_GIT_ID)
    links = []
    for expected_index in (7, 8):
        r = await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)
        assert r.status_code == 200
        ev = r.json()
        assert ev["executionIndex"] == expected_index
        assert ev["executionStatus"] == "RUNNING"
        assert ev["_updateTimeInMicros"] > before["_updateTimeInMicros"]
        links.append(ev["executionLink"])
        execution = (await client.get(ev["executionLink"], headers=auth)).json()
        assert execution["name"] == f"payments-ci#{expected_index}"
        assert execution["index"] == expected_index
        assert execution["project"] == "Payments"
        assert execution["_link"] == ev["executionLink"]
        assert execution["_executedBy"] == "svc-codestream-bot"
        assert execution["input"]["GIT_COMMIT_ID"] == before["commitId"]
        assert {"stages", "stageOrder", "tags", "_pipelineLink", "_requestTimeInMicros", "createdAt"} <= set(execution)
    assert links[0] != links[1]


async def test_resume_of_a_trigger_failure_clears_the_message(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.post(f"{GIT}/{SAMPLE_TRIGGER_FAILED_GIT_ID}", params={"action": "Resume"}, headers=auth)
    assert r.status_code == 200
    ev = r.json()
    assert "message" not in ev
    assert ev["executionIndex"] == 1 and ev["executionLink"].startswith(f"{API}/executions/")


@pytest.mark.parametrize(
    ("segment", "event_id"),
    [("gerrit-events", SAMPLE_FAILED_GERRIT_ID), ("registry-events", SAMPLE_FAILED_DOCKER_ID)],
)
async def test_rerun_other_kinds(client: httpx.AsyncClient, auth: dict[str, str], segment: str, event_id: str) -> None:
    before = (await client.get(f"{API}/{segment}/{event_id}", headers=auth)).json()
    r = await client.post(f"{API}/{segment}/{event_id}", params={"action": "Rerun"}, headers=auth)
    assert r.status_code == 200
    assert r.json()["executionIndex"] == before["executionIndex"] + 1


@pytest.mark.parametrize("action", ["rerun", "RERUN", "Delete", ""])
async def test_invalid_action_is_a_400(client: httpx.AsyncClient, auth: dict[str, str], action: str) -> None:
    r = await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": action}, headers=auth)
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid action"


async def test_rerun_of_an_unknown_event_is_a_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    r = await client.post(f"{GIT}/nope", params={"action": "Rerun"}, headers=auth)
    assert r.status_code == 404
    r = await client.get(f"{API}/executions/nope", headers=auth)
    assert r.status_code == 404
    assert r.json()["message"] == "Execution with id nope not found"


@pytest.mark.parametrize("override", [None, "FAILED"])
async def test_execution_status_progresses_and_the_event_follows(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str], override: str | None
) -> None:
    sim.execution_duration = 0.5
    if override:
        sim.next_final_status[SAMPLE_FAILED_GIT_ID] = override
    ev = (await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)).json()
    assert (await client.get(ev["executionLink"], headers=auth)).json()["status"] == "RUNNING"
    final = override or "COMPLETED"

    async def finished() -> bool:
        return bool((await client.get(ev["executionLink"], headers=auth)).json()["status"] == final)

    await wait_until(finished)
    execution = (await client.get(ev["executionLink"], headers=auth)).json()
    assert execution["_durationInMicros"] >= 400_000
    event = (await client.get(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", headers=auth)).json()
    assert event["executionStatus"] == final
    assert SAMPLE_FAILED_GIT_ID not in sim.next_final_status  # consumed


async def test_set_execution_status_and_add_execution(sim: CodeStreamSimulator) -> None:
    sim.set_execution_status(SAMPLE_FAILED_EXECUTION_ID, "CANCELED")
    assert sim.get_execution(SAMPLE_FAILED_EXECUTION_ID)["status"] == "CANCELED"
    assert sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionStatus"] == "CANCELED"
    ex = sim.add_execution(pipeline="payments-ci", status="COMPLETED", tags=["manual"])
    assert ex["index"] == 7 and ex["name"] == "payments-ci#7" and ex["tags"] == ["manual"]
    running = sim.add_execution(pipeline="adhoc")
    assert running["status"] == "RUNNING" and running["index"] == 1


# -- faults ----------------------------------------------------------------------------------


async def test_fault_html_error_page_applies_times_then_is_spent(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    fault = sim.inject(Fault(path=r"/git-events$", status=502, body=HTML_ERROR_PAGE, content_type="text/html", times=1))
    r = await client.get(GIT, headers=auth)
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert "Bad Gateway" in r.text
    assert (await client.get(GIT, headers=auth)).status_code == 200
    assert fault.hits == 1


async def test_fault_status_with_default_json_body_and_headers(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(Fault(method="GET", path="/about", status=429, headers={"Retry-After": "1"}, times=2))
    for _ in range(2):
        r = await client.get(f"{API}/about", headers=auth)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.json() == {"message": "Too Many Requests", "statusCode": 429}
    # A POST to the same path is not matched by a GET fault.
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 200


async def test_fault_dict_body(sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    sim.inject(Fault(path="/executions/", status=500, body={"error": "boom"}))
    r = await client.get(f"{API}/executions/{SAMPLE_FAILED_EXECUTION_ID}", headers=auth)
    assert r.status_code == 500
    assert r.json() == {"error": "boom"}


async def test_fault_delay(sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    sim.inject(Fault(path="/about", delay=0.3, times=1))
    started = time.monotonic()
    r = await client.get(f"{API}/about", headers=auth)
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_fault_delay_times_out_the_client(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(Fault(path="/about", delay=30))
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{API}/about", headers=auth, timeout=0.2)


async def test_fault_reset_drops_the_connection(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(Fault(path=r"/git-events$", reset=True, times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(GIT, headers=auth)
    assert (await client.get(GIT, headers=auth)).status_code == 200


async def test_fault_garbage_is_a_200_with_invalid_json(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(Fault(path=r"/git-events$", garbage=True))
    r = await client.get(GIT, headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        r.json()


async def test_fault_after_processing_reset_loses_the_answer_but_the_rerun_happened(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(
        Fault(method="POST", path=f"/git-events/{SAMPLE_FAILED_GIT_ID}$", reset=True, after_processing=True, times=1)
    )
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)
    ev = sim.get_event("git", SAMPLE_FAILED_GIT_ID)
    assert ev["executionIndex"] == 7  # the execution exists although the client saw an error
    assert sim.get_execution(ev["executionLink"].rsplit("/", 1)[1])["index"] == 7
    # A blind retry runs the pipeline a second time: what idempotency must guard against.
    retry = await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)
    assert retry.json()["executionIndex"] == 8


async def test_fault_after_processing_status(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.inject(Fault(method="POST", path="/git-events/", status=504, after_processing=True, times=1))
    r = await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)
    assert r.status_code == 504
    assert sim.get_event("git", SAMPLE_FAILED_GIT_ID)["executionIndex"] == 7


async def test_faults_apply_to_login_endpoints(sim: CodeStreamSimulator, client: httpx.AsyncClient) -> None:
    sim.inject(Fault(method="POST", path=f"^{LOGIN}$", status=503, times=1))
    sim.inject(Fault(method="POST", path="/api-tokens/authorize", reset=True, times=1))
    r = await client.post(LOGIN, json={"refreshToken": "sim-refresh-token"})
    assert r.status_code == 503
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(CSP, data={"api_token": "sim-api-token"})
    assert sim.logins == 0
    await login(client)
    assert sim.logins == 1


async def test_clear_faults(sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    sim.inject(Fault(status=500))
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 500
    sim.clear_faults()
    assert (await client.get(f"{API}/about", headers=auth)).status_code == 200


async def test_stop_does_not_wait_for_a_stalled_request() -> None:
    sim = CodeStreamSimulator(seed=False)
    url = await sim.start()
    sim.inject(Fault(path="/about", delay=30))
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as c:
        auth = await login(c)
        pending = asyncio.create_task(c.get(f"{API}/about", headers=auth))

        async def arrived() -> bool:
            return sim.count("GET", f"{API}/about") == 1

        await wait_until(arrived)
        started = time.monotonic()
        await sim.stop()
        assert time.monotonic() - started < 3.0
        with pytest.raises(httpx.TransportError):
            await pending


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="status"):
        Fault(status=42)
    with pytest.raises(ValueError, match="delay"):
        Fault(delay=-1)


# -- recording -------------------------------------------------------------------------------


async def test_requests_are_recorded_including_faulted_ones(
    sim: CodeStreamSimulator, client: httpx.AsyncClient
) -> None:
    sim.inject(Fault(path="/git-events/", status=500, times=1))
    auth = await login(client)
    await client.post(
        f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun", "apiVersion": "2019-10-17"}, headers=auth
    )
    await client.post(f"{GIT}/{SAMPLE_FAILED_GIT_ID}", params={"action": "Rerun"}, headers=auth)
    assert [r.method for r in sim.requests] == ["POST", "POST", "POST"]
    assert sim.count("POST", f"{GIT}/") == 2
    assert sim.count("*", "/") == 3
    assert sim.count("GET", GIT) == 0
    login_request, first, _ = sim.requests
    assert login_request.path == LOGIN
    assert login_request.json() == {"refreshToken": "sim-refresh-token"}
    assert first.query == {"action": "Rerun", "apiVersion": "2019-10-17"}
    assert first.headers["authorization"] == first.headers["Authorization"] == auth["Authorization"]
    assert first.at <= sim.requests[2].at
    sim.reset_requests()
    assert sim.requests == [] and sim.count("*", "/") == 0


# -- bulk data -------------------------------------------------------------------------------


async def test_generate_10k_and_list_the_failed_ones() -> None:
    async with CodeStreamSimulator(seed=False) as sim:
        # How fast it generates is not asserted here (a timed unit test fails on a busy machine).
        ids = sim.generate("git", n=10_000, failed=200)
        assert len(set(ids)) == 10_000
        assert sim.base_url is not None
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            auth = await login(c)
            params = {"$filter": "executionStatus eq 'FAILED'", "$orderby": "updatedAt desc", "$top": "150"}
            first = (await c.get(GIT, headers=auth, params=params)).json()
            second = (await c.get(GIT, headers=auth, params={**params, "$skip": "150"})).json()
            assert first["totalCount"] == 200
            assert (first["count"], second["count"]) == (150, 50)
            found = first["links"] + second["links"]
            assert len(set(found)) == 200
            docs = [*first["documents"].values(), *second["documents"].values()]
            assert all(d["executionStatus"] == "FAILED" for d in docs)
            stamps = [d["_updateTimeInMicros"] for d in docs]
            assert stamps == sorted(stamps, reverse=True)
            execution = (await c.get(docs[0]["executionLink"], headers=auth)).json()
            assert execution["status"] == "FAILED"


# -- serve_forever ---------------------------------------------------------------------------


async def test_serve_forever_prints_how_to_connect_and_stops_on_cancel(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(serve_forever("127.0.0.1", 0, execution_duration=0.1))

    output = ""

    async def has_output() -> bool:
        nonlocal output
        output += capsys.readouterr().out
        return "listening on" in output

    await wait_until(has_output)
    match = re.search(r"listening on (http://\S+)", output)
    assert match is not None
    assert "sim-refresh-token" in output and "sim-api-token" in output
    assert SAMPLE_FAILED_GIT_ID in output
    async with httpx.AsyncClient(base_url=match.group(1)) as c:
        auth = await login(c)
        assert (await c.get(f"{API}/about", headers=auth)).status_code == 200
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            await c.get(f"{API}/about", headers=auth)


# -- execution actions and user operations ---------------------------------------------------


async def test_executions_pause_resume_and_cancel_as_vra_moves_them(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # Long enough that a loaded machine still pauses (and, after resume, cancels) it running;
    # short enough to watch the other run finish meanwhile.
    sim.execution_duration = 2.0
    ex_id = str(sim.add_execution(pipeline="moving-ci")["id"])
    path = f"{API}/executions/{ex_id}"

    async def act(action: str, reason: str = "why") -> httpx.Response:
        return await client.post(path, params={"action": action}, json={"reason": reason}, headers=auth)

    async def status() -> str:
        return str((await client.get(path, headers=auth)).json()["status"])

    paused = await act("pause", "Paused from Slack by @alice")
    assert paused.json()["status"] == "PAUSING" and paused.json()["reason"] == "Paused from Slack by @alice"
    assert await status() == "PAUSED"
    assert (await act("pause")).status_code == 400  # already paused
    # Another run started after it, as long, finishes; the paused one does not.
    other = f"{API}/executions/{sim.add_execution(pipeline='other-ci')['id']}"

    async def other_done() -> bool:
        return bool((await client.get(other, headers=auth)).json()["status"] == "COMPLETED")

    await wait_until(other_done, within=30)
    assert await status() == "PAUSED"
    assert (await act("resume")).json()["status"] == "RUNNING"
    assert (await act("cancel")).json()["status"] == "CANCELING"
    assert await status() == "CANCELED"
    assert (await act("cancel")).status_code == 400  # nothing left to cancel
    assert (await act("explode")).status_code == 400
    missing = await client.post(
        f"{API}/executions/00000000-0000-4000-8000-000000000000", params={"action": "cancel"}, json={}, headers=auth
    )
    assert missing.status_code == 404


async def test_user_operations_are_decided_once_expire_and_refuse_unauthorized_responders(
    sim: CodeStreamSimulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = sim.user_operations.add(approvers=["alice@example.com"])
    second = sim.user_operations.add()
    listed = (await client.get(f"{API}/user-operations", params={"$filter": "status eq 'ACTIVE'"}, headers=auth)).json()
    assert listed["count"] == 2
    decide = f"{API}/user-operations/{first['id']}"
    assert (await client.post(decide, json={"status": "maybe"}, headers=auth)).status_code == 400
    approved = await client.post(decide, json={"status": "Approved", "responseMessage": "ok"}, headers=auth)
    assert approved.json()["status"] == "APPROVED" and approved.json()["responseMessage"] == "ok"
    assert (await client.post(decide, json={"status": "REJECTED"}, headers=auth)).status_code == 400  # decided
    sim.user_operations.forbidden.add(str(second["id"]))
    refused = await client.post(f"{API}/user-operations/{second['id']}", json={"status": "APPROVED"}, headers=auth)
    assert refused.status_code == 403
    sim.user_operations.ops[str(second["id"])]["_expiresOnInMicros"] = 0
    assert (await client.get(f"{API}/user-operations/{second['id']}", headers=auth)).json()["status"] == "EXPIRED"
