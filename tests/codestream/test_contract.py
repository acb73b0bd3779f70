"""Contract: every request the client sends conforms to the official Code Stream spec, and the
spec's own example payloads parse."""

from __future__ import annotations

from bot.codestream.client import CodeStreamClient
from bot.codestream.execution_actions import ExecutionAction
from bot.codestream.models import EventKind
from bot.simulator import SAMPLE_FAILED_DOCKER_ID, SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID, CodeStreamSimulator
from tests.spec import SPEC_FILES, check_body, check_request, find_operation


async def test_every_request_the_client_sends_is_in_the_spec(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    await client.about()
    samples: list[tuple[EventKind, str]] = [
        ("git", SAMPLE_FAILED_GIT_ID),
        ("gerrit", SAMPLE_FAILED_GERRIT_ID),
        ("docker", SAMPLE_FAILED_DOCKER_ID),
    ]
    for kind, event_id in samples:
        await client.list_events(kind, filter="executionStatus eq 'FAILED'", orderby="updatedAt desc", top=5, skip=0)
        await client.get_event(kind, event_id)
        result = await client.rerun(kind, event_id)
        await client.resume(kind, event_id)
        assert result.event is not None and result.event.execution_id is not None
        await client.get_execution(result.event.execution_id)

    api_requests = [r for r in sim.requests if r.path.startswith("/codestream/api/")]
    operations = {(r.method, find_operation(r.method, r.path)[0]) for r in api_requests}  # type: ignore[index]
    assert operations == {
        ("GET", "/codestream/api/about"),
        ("GET", "/codestream/api/git-events"),
        ("GET", "/codestream/api/gerrit-events"),
        ("GET", "/codestream/api/registry-events"),
        ("GET", "/codestream/api/git-events/{id}"),
        ("GET", "/codestream/api/gerrit-events/{id}"),
        ("GET", "/codestream/api/registry-events/{id}"),
        ("POST", "/codestream/api/git-events/{id}"),
        ("POST", "/codestream/api/gerrit-events/{id}"),
        ("POST", "/codestream/api/registry-events/{id}"),
        ("GET", "/codestream/api/executions/{id}"),
    }
    problems = [p for r in api_requests for p in check_request(r.method, r.path, r.query, bool(r.body))]
    assert problems == []
    assert {r.query["action"] for r in api_requests if r.method == "POST"} == {"Rerun", "Resume"}


def test_the_checker_catches_nonconforming_requests() -> None:
    assert check_request("POST", "/codestream/api/git-events/x", {"apiVersion": "2019-10-17"}) == [
        "POST /codestream/api/git-events/{id}: missing required query parameter 'action'"
    ]
    assert check_request("GET", "/codestream/api/git-events", {"$limit": "5"}) == [
        "GET /codestream/api/git-events: undocumented query parameter '$limit'"
    ]
    assert check_request("PUT", "/codestream/api/git-events/x", {}) == [
        "PUT /codestream/api/git-events/x: no such operation in the spec"
    ]


async def test_execution_actions_conform_to_both_spec_versions(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    """Pause, resume and cancel: path, query and the ExecutionActionRequest body, against the
    2019-10-17 spec and vRA 8.10.1's."""
    # It runs for an hour: pause, resume and cancel each meet it running, however loaded the
    # machine (with the fixture's 0.3 s, a slow moment let it complete before the pause).
    sim.execution_duration = 3600.0
    execution = await client.get_execution(str(sim.add_execution(pipeline="contract-ci")["id"]))
    assert execution.id is not None
    steps: list[ExecutionAction] = ["pause", "resume", "cancel"]
    for action in steps:
        reason = "Paused from Slack by @alice"
        result = await client.act_on_execution(execution.id, action, reason=reason, before=execution)
        assert result.state == "succeeded"
        execution = await client.get_execution(execution.id)
    posts = [r for r in sim.requests if r.method == "POST" and r.path.startswith("/codestream/api/executions/")]
    assert [r.query["action"] for r in posts] == steps
    for spec_file in SPEC_FILES:
        for r in posts:
            assert check_request(r.method, r.path, r.query, bool(r.body), spec_file) == []
            assert check_body(r.method, r.path, r.json(), spec_file) == []
    problems = check_body("POST", posts[0].path, {"reason": 3, "why": "x"})
    assert problems[0] == "POST /codestream/api/executions/{id}: reason should be string, got 3"
    assert problems[1].startswith("POST /codestream/api/executions/{id}: undocumented body property 'why'")


async def test_approval_requests_conform_to_both_spec_versions(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    """List, read and respond to user operations: path, query and the UserOpResponse body (the
    enum form of the status) against both specs."""
    first = sim.user_operations.add(approvers=["alice@example.com"])
    second = sim.user_operations.add(status="Active")  # read leniently
    pending = await client.list_user_operations(filter="status eq 'ACTIVE'", top=50)
    assert [op.id for op in pending] == [first["id"]]
    before = await client.get_user_operation(str(first["id"]))
    assert before.pending and before.approvers == ["alice@example.com"] and before.expires_at is not None
    result = await client.respond_to_user_operation(str(first["id"]), "APPROVED", message="looks good", before=before)
    assert result.state == "succeeded" and result.operation is not None and result.operation.status == "APPROVED"
    lenient = await client.get_user_operation(str(second["id"]))
    assert lenient.status == "ACTIVE"
    requests = [r for r in sim.requests if "/user-operations" in r.path]
    posts = [r for r in requests if r.method == "POST"]
    assert [r.json() for r in posts] == [{"status": "APPROVED", "responseMessage": "looks good"}]
    for spec_file in SPEC_FILES:
        for r in requests:
            assert check_request(r.method, r.path, r.query, bool(r.body), spec_file) == []
        for r in posts:
            assert check_body(r.method, r.path, r.json(), spec_file) == []
