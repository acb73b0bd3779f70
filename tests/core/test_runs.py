"""Running a pipeline, the pure parts: the command's words, a step's input lines, secrets, and
the form's and the answers' rendering within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.codestream.pipelines import Pipeline
from bot.core.errors import UsageError
from bot.core.requests import Actor
from bot.core.run_inputs import Plan, masked, parse_input_lines, parse_run_words, scrub
from bot.core.runs import RunOutcome, RunRequest
from bot.slack.render.run import parse_run_form, render_run_form, render_run_outcome


def test_command_words_keep_what_was_typed() -> None:
    words = 'deploy-api project:"Team A" repo=<https://git/x|git/x> path=C:\\builds\\x msg=don’t note=“a  b”'
    ref, project, inputs = parse_run_words(words.split(" "))
    assert (ref, project) == ("deploy-api", "Team A")
    assert inputs == {"repo": "https://git/x", "path": "C:\\builds\\x", "msg": "don’t", "note": "a  b"}
    assert parse_run_words(["<https://vra/codestream/#/pipelines/abc/edit|link>"])[0].startswith("https://vra/")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "Say which pipeline"),
        (["p", "a=1", "a=2"], "given twice"),
        (["p", 'a="x'], "quote is not closed"),
        (["p", "stray"], "`stray`"),
        (["p", "api_token"], "that word"),  # a secret-looking word is not echoed
    ],
)
def test_command_words_that_do_not_make_a_run(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        parse_run_words(words)
    assert "api_token" not in raised.value.user_message


def test_step_input_lines() -> None:
    assert parse_input_lines("env=prod\n\n version = 2 \n") == {"env": "prod", "version": "2"}
    with pytest.raises(UsageError, match="line 2") as raised:
        parse_input_lines("env=prod\napi_token: s3cr3t")
    assert "s3cr3t" not in raised.value.user_message
    with pytest.raises(UsageError, match="twice"):
        parse_input_lines("a=1\na=2")


def test_secrets_are_masked_and_scrubbed() -> None:
    inputs = {"env": "prod", "DB_PWD": "hunter22", "registry_token": "abc123", "apiKey": "k-9"}
    assert masked(inputs) == {"env": "prod", "DB_PWD": "••••••", "registry_token": "••••••", "apiKey": "••••••"}
    assert scrub("bad value hunter22 for abc123 in prod", inputs) == "bad value •••••• for •••••• in prod"


def _pipeline(n: int, mandatory: set[int]) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "p1",
            "name": "big",
            "project": "P",
            "input": {f"in{i}": "" for i in range(n)},
            "_inputMeta": {f"in{i}": {"description": f"input {i}", "mandatory": i in mandatory} for i in range(n)},
        }
    )


def test_a_form_holds_every_mandatory_input_within_a_modal_s_100_blocks() -> None:
    pipeline = _pipeline(120, {0, 55, 119})
    view = render_run_form(Plan(pipeline, {}, ()), channel_id="C1", thread_ts=None)
    fields = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert len(view["blocks"]) <= 100 and {"input:in0", "input:in55", "input:in119"} <= set(fields)
    assert "do not fit in a form" in str(view["blocks"])
    assert len(view["private_metadata"]) <= 3000 and len(view["title"]["text"]) <= 24


def test_a_secret_typed_in_the_command_must_be_typed_again_in_the_form() -> None:
    pipeline = Pipeline.model_validate({"id": "p1", "name": "d", "input": {"env": "", "api_token": ""}})
    view = render_run_form(Plan(pipeline, {"api_token": "s3cr3t"}, ()), channel_id="C1", thread_ts=None)
    [token] = [b for b in view["blocks"] if b.get("block_id") == "input:api_token"]
    assert token["optional"] is False and "initial_value" not in token["element"]
    assert "type it again" in token["hint"]["text"] and "s3cr3t" not in str(view)
    values = {"input:env": {"value": {"value": " prod "}}, "input:api_token": {"value": {"value": ""}}}
    assert parse_run_form({**view, "state": {"values": values}}) == ("p1", "C1", None, {"env": "prod"})


def _outcome(status: str, **more: object) -> RunOutcome:
    request = RunRequest("p1", {"env": "prod", "api_token": "s3cr3t"}, "k", Actor("U1", "alice"), "slash")
    pipeline = Pipeline.model_validate({"id": "p1", "name": "deploy-<api>"})
    return RunOutcome(request, status, pipeline, at=datetime.now(UTC), **more)  # type: ignore[arg-type]


def test_answers_say_what_code_stream_did_and_never_invite_a_second_run_wrongly() -> None:
    now = datetime.now(UTC)
    started = render_run_outcome(_outcome("started", execution_id="e1", execution_index=3), now=now)
    assert (
        "<api>" not in str(started.blocks) + started.text
        and "s3cr3t" not in str(started)
        and "api_token=••••••" in started.text
    )
    unknown = str(render_run_outcome(_outcome("unknown", settle_by=now), now=now))
    assert "do not run it again" in unknown
    late_unknown = str(render_run_outcome(_outcome("unknown", settled_late=True), now=now))
    assert "could not confirm" in late_unknown and "will update" not in late_unknown
    late_not = str(render_run_outcome(_outcome("not_started", settled_late=True), now=now))
    assert "did *not* start" in late_not and "run it again" not in late_not
