"""Pipelines: finding one by name, reading its inputs, running it exactly once (a lost answer
is read back by the run's tag), and every request as the spec documents it."""

from __future__ import annotations

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import BadRequest, NotFound
from bot.codestream.transport import TransportFailure
from bot.simulator import CodeStreamSimulator
from bot.simulator.cs_faults import Fault
from bot.simulator.cs_pipelines import pipeline_id_for
from tests.conftest import ClientFactory
from tests.spec import SPEC_FILES, check_body, check_request

RUNS = r"/pipelines/[^/]+/executions$"


async def test_find_read_and_run_a_pipeline_with_its_inputs(client: CodeStreamClient, sim: CodeStreamSimulator) -> None:
    [found] = await client.find_pipelines("deploy-api", project="Payments")
    assert found.pipeline_id == pipeline_id_for("deploy-api") and found.runnable
    pipeline = await client.get_pipeline(pipeline_id_for("deploy-api"))
    inputs = {i.name: i for i in pipeline.inputs()}
    assert list(inputs) == ["env", "version", "dry_run", "registry_token"]
    assert inputs["env"].mandatory and inputs["env"].default == "staging" and "environment" in inputs["env"].description
    assert not inputs["dry_run"].mandatory
    assert await client.find_pipelines("no-such-pipeline") == []
    assert await client.find_pipelines("it's") == []  # quoted, not an OData syntax error

    result = await client.run_pipeline(
        found.pipeline_id or "", inputs={"env": "prod", "version": "2.4.1"}, comments="Run from Slack", tag="t-1"
    )
    assert result.state == "succeeded" and result.execution_id and result.execution_index == 1
    [post] = [r for r in sim.requests if r.method == "POST" and "/pipelines/" in r.path]
    assert post.json() == {"comments": "Run from Slack", "input": {"env": "prod", "version": "2.4.1"}, "tags": ["t-1"]}
    execution = await client.get_execution(result.execution_id)
    assert execution.input["env"] == "prod" and execution.input["dry_run"] == "false" and execution.tags == ["t-1"]
    assert (await client.find_run(found.pipeline_id or "", "t-1")) is not None
    assert await client.find_run(found.pipeline_id or "", "t-2") is None


async def test_unknown_and_disabled_pipelines_are_definite_refusals(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    sim.pipelines.add("frozen", enabled=False)
    frozen = await client.get_pipeline(pipeline_id_for("frozen"))
    assert not frozen.runnable
    try:
        await client.run_pipeline(pipeline_id_for("frozen"), inputs={}, comments="", tag="t")
    except BadRequest:
        pass
    else:
        raise AssertionError("a disabled pipeline must be refused")
    try:
        await client.get_pipeline(pipeline_id_for("gone"))
    except NotFound:
        pass
    else:
        raise AssertionError("an unknown pipeline must be NotFound")


async def test_lost_answer_after_the_run_started_is_read_back_by_its_tag(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    sim.inject(Fault(method="POST", path=RUNS, reset=True, after_processing=True))
    result = await client.run_pipeline(pipeline_id_for("nightly-report"), inputs={}, comments="", tag="t-lost")
    assert result.state == "succeeded" and result.execution_index == 1
    assert isinstance(result.error, TransportFailure) and result.error.request_sent
    assert sim.count("POST", "/codestream/api/pipelines/") == 1


async def test_request_lost_before_code_stream_ran_it_is_unknown_never_not_started(
    make_client: ClientFactory, sim: CodeStreamSimulator
) -> None:
    client = make_client(timeout=0.3)
    sim.inject(Fault(method="POST", path=RUNS, reset=True))
    result = await client.run_pipeline(pipeline_id_for("nightly-report"), inputs={}, comments="", tag="t-x")
    assert result.state == "unknown" and result.execution_id is None
    assert sim.count("POST", "/codestream/api/pipelines/") == 1


async def test_pipeline_requests_conform_to_both_spec_versions(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    [pipeline] = await client.find_pipelines("deploy-api", project="Payments")
    await client.get_pipeline(pipeline.pipeline_id or "")
    await client.run_pipeline(pipeline.pipeline_id or "", inputs={"env": "prod"}, comments="c", tag="t")
    await client.find_run(pipeline.pipeline_id or "", "t")
    requests = [r for r in sim.requests if "/pipelines" in r.path]
    assert len(requests) == 4
    for spec_file in SPEC_FILES:
        for r in requests:
            assert check_request(r.method, r.path, r.query, bool(r.body), spec_file) == []
        for r in requests:
            if r.method == "POST":
                assert check_body(r.method, r.path, r.json(), spec_file) == []


async def test_a_run_is_found_behind_many_newer_ones_and_by_its_comments_without_tags(
    client: CodeStreamClient, sim: CodeStreamSimulator
) -> None:
    pipeline_id = pipeline_id_for("nightly-report")
    sim.pipelines.keep_tags = False  # this Code Stream drops tags: the comments carry the tag too
    sim.pipelines.run(pipeline_id, {"comments": "Run from Slack by @a (codestream-bot:k1)"}, "bot")
    for _ in range(120):  # a busy pipeline ran often since
        sim.pipelines.run(pipeline_id, {}, "git")
    found = await client.find_run(pipeline_id, "codestream-bot:k1")
    assert found is not None and found.index == 1
    gets = [r for r in sim.requests if r.method == "GET" and r.path.endswith("/executions")]
    assert [r.query["$skip"] for r in gets] == ["0", "50", "100"]
    assert await client.find_run(pipeline_id, "codestream-bot:k2") is None
