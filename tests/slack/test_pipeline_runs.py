"""Running a pipeline from Slack, through signed HTTP against the simulator: the command with
every input, the form for missing ones (submitted twice: one run), a slow Code Stream answered
ambiguously (read back by the run's tag, never "run it again" wrongly), the access action `run`,
the workflow step (delivered twice: one run, completed once), and secrets masked everywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.verbs import CONTROLS
from bot.simulator import Fault
from bot.simulator.slack_api import Message, wait_for
from tests.harness import ALERTS, Harness, buttons, everything, harness_with_config, running_harness

RUNS = r"/pipelines/[^/]+/executions$"
SECRET = "s3cr3t-registry-token"


def run_posts(h: Harness) -> list[Any]:
    """The runs Code Stream received: their ExecutionRequest bodies."""
    return [r.json() for r in h.sim.requests if r.method == "POST" and "/pipelines/" in r.path]


def bot_messages(h: Harness, channel: str = ALERTS) -> list[Message]:
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT"]


async def answer_to(h: Harness, user: str = "U0ALICE") -> str:
    """What only ``user`` was told (a response_url answer or an ephemeral), newest."""

    def latest() -> str | None:
        said = [json.dumps(r.body, ensure_ascii=False) for r in h.slack.responses]
        said += [everything(m) for m in h.slack.ephemerals_for(user)]
        return said[-1] if said else None

    found = await wait_for(latest, timeout=10)
    assert found is not None
    return found


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path) as harness:
        yield harness


async def test_a_command_with_every_input_runs_once_and_the_summary_follows_it(h: Harness) -> None:
    await h.send.slash_command("run deploy-api env=prod version=2.4.1", channel=ALERTS)
    [summary] = await wait_for(lambda: bot_messages(h) or None, timeout=10)
    [body] = run_posts(h)
    assert body["input"] == {"env": "prod", "version": "2.4.1"}  # exactly what was given
    [tag] = body["tags"]
    assert tag.startswith("codestream-bot:")
    assert body["comments"] == f"Run from Slack by @alice ({tag})"  # the tag again, for a Code Stream without tags
    shown = everything(summary)
    assert "<@U0ALICE> ran" in shown and "deploy-api #1" in shown and "(env=prod, version=2.4.1)" in shown
    assert set(buttons(summary)) == {CONTROLS["cancel"].button_action_id, CONTROLS["pause"].button_action_id}

    def ended() -> Message | None:
        current = h.slack.message(ALERTS, summary.ts)
        return current if current is not None and "COMPLETED" in everything(current) else None

    final = await wait_for(ended, timeout=15)  # the same message, updated in place
    assert final is not None and buttons(final) == {}
    assert len(bot_messages(h)) == 1 and len(run_posts(h)) == 1
    [row] = [r for r in await h.store.actions.list() if r.kind == "pipeline"]
    assert row.action == "run" and row.status == "started" and row.pipeline == "deploy-api"
    assert row.execution_id is not None and row.surface == "slash"


async def test_unknown_inputs_pipelines_and_disabled_ones_get_a_specific_answer(h: Harness) -> None:
    h.sim.pipelines.add("frozen", project="Payments", enabled=False)
    cases = {
        "run deploy-api env=prod version=1 colour=blue": "has no input `colour`",
        "run no-such-pipeline": "No pipeline named",
        "run frozen": "cannot be run until it is enabled",
        'run deploy-api env="prod': "quote is not closed",
    }
    for text, expected in cases.items():
        seen = len(h.slack.responses)
        await h.send.slash_command(text, channel=ALERTS)
        await wait_for(lambda: len(h.slack.responses) > seen or None, timeout=10)  # noqa: B023 - awaited here
        said = json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
        assert expected in said, (text, said)
        assert h.slack.responses[-1].body.get("response_type") == "ephemeral"
    assert run_posts(h) == []
    assert bot_messages(h) == []


async def open_form(h: Harness, text: str) -> dict[str, Any]:
    seen = len(h.slack.views)
    await h.send.slash_command(text, channel=ALERTS)
    await wait_for(lambda: len(h.slack.views) > seen or None, timeout=10)
    return dict(h.slack.views[-1]["view"], id=h.slack.views[-1]["id"])


def form_values(view: dict[str, Any], **values: str) -> dict[str, Any]:
    """``state.values`` as Slack sends them: every field as shown, with ``values`` typed in."""
    filled: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        name = block["block_id"].removeprefix("input:")
        value = values.get(name, block["element"].get("initial_value"))
        filled[block["block_id"]] = {"value": {"type": "plain_text_input", "value": value}}
    return filled


async def test_missing_inputs_open_a_form_and_submitting_it_twice_runs_once(h: Harness) -> None:
    view = await open_form(h, "run deploy-api version=2.4.1")
    fields = {b["block_id"]: b for b in view["blocks"] if b.get("type") == "input"}
    assert list(fields) == ["input:env", "input:version", "input:dry_run", "input:registry_token"]
    assert fields["input:env"]["optional"] is False and fields["input:dry_run"]["optional"] is True
    assert fields["input:env"]["element"]["initial_value"] == "staging"  # the default
    assert fields["input:version"]["element"]["initial_value"] == "2.4.1"  # given in the command
    assert "Target environment" in fields["input:env"]["hint"]["text"]
    assert run_posts(h) == []  # nothing runs until the form is submitted

    values = form_values(view, env="prod", registry_token=SECRET)
    for _ in range(2):  # a double submission (or Slack's retry of it)
        resp = await h.send.view_submission(view, values=values)
        assert resp.status_code == 200
    [summary] = await wait_for(lambda: bot_messages(h) or None, timeout=10)
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE") or None, timeout=10)
    assert "Already run" in everything(h.slack.ephemerals_for("U0ALICE")[-1])
    [body] = run_posts(h)
    assert body["input"] == {"env": "prod", "version": "2.4.1", "dry_run": "false", "registry_token": SECRET}
    assert SECRET not in everything(summary) and "registry_token=••••••" in everything(summary)
    rows = [r for r in await h.store.actions.list() if r.kind == "pipeline"]
    assert sorted(r.status for r in rows) == ["duplicate", "started"]
    assert all(r.surface == "form" for r in rows) and all(SECRET not in (r.detail or "") for r in rows)


async def test_secrets_never_reach_slack_logs_or_the_audit_trail(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await h.send.slash_command(f"run deploy-api env=prod version=1 registry_token={SECRET}", channel=ALERTS)
    [summary] = await wait_for(lambda: bot_messages(h) or None, timeout=10)
    await wait_for(
        lambda: "COMPLETED" in everything(h.slack.message(ALERTS, summary.ts) or summary) or None, timeout=15
    )
    assert run_posts(h)[0]["input"]["registry_token"] == SECRET  # Code Stream alone gets it
    everything_said = [everything(m) for m in h.slack.messages(ALERTS)] + [str(c.args) for c in h.slack.calls]
    assert not [s for s in everything_said if SECRET in s]
    assert SECRET not in caplog.text
    assert not [r for r in await h.store.actions.list() if SECRET in r.model_dump_json()]


async def test_code_stream_quoting_a_secret_back_in_a_refusal_does_not_leak_it(h: Harness) -> None:
    said = f'{{"message": "Invalid value {SECRET} for registry_token", "statusCode": 400}}'
    h.sim.inject(Fault(method="POST", path=RUNS, status=400, body=said, content_type="application/json"))
    await h.send.slash_command(f"run deploy-api env=prod version=1 registry_token={SECRET}", channel=ALERTS)
    answer = await answer_to(h)
    assert "did not run" in answer and "Invalid value" in answer, answer
    assert SECRET not in answer
    assert not [r for r in await h.store.actions.list() if SECRET in r.model_dump_json()]


async def test_a_slow_answer_is_read_back_by_its_tag_and_runs_once(h: Harness) -> None:
    # Code Stream runs it, but answers after the bot's timeout (CODESTREAM_TIMEOUT=2 in tests).
    h.sim.inject(Fault(method="POST", path=RUNS, delay=3.0, after_processing=True))
    await h.send.slash_command("run nightly-report", channel=ALERTS)
    [summary] = await wait_for(lambda: bot_messages(h) or None, timeout=15)
    shown = everything(summary)
    assert "ran" in shown and "nightly-report #1" in shown, shown
    assert "again" not in shown
    assert len(run_posts(h)) == 1


async def test_an_answer_lost_before_code_stream_ran_it_is_never_safe_to_retry_until_read_back(
    h: Harness,
) -> None:
    h.sim.inject(Fault(method="POST", path=RUNS, reset=True, times=1))
    await h.send.slash_command("run nightly-report", channel=ALERTS)
    [shown] = await wait_for(lambda: bot_messages(h) or None, timeout=15)
    assert "do not run it again" in everything(shown), everything(shown)
    assert "run it again" not in everything(shown).replace("do not run it again", "")
    assert len(run_posts(h)) == 1
    [row] = [r for r in await h.store.actions.list() if r.kind == "pipeline"]
    assert row.status == "unknown" and row.settle_by is not None


@pytest.fixture
async def bob_may_not_run(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show, run]\n      projects: [Payments]\n"
        "    - users: [U0BOB]\n"  # the verbs, but `run` must be named
    )
    async with harness_with_config(tmp_path, config) as harness:
        yield harness


async def test_run_is_granted_only_where_a_rule_names_it(bob_may_not_run: Harness) -> None:
    h = bob_may_not_run
    await h.send.slash_command("run deploy-api env=prod version=1", user="U0BOB", channel=ALERTS)
    said = await answer_to(h, "U0BOB")
    assert "run" in said and "not" in said.lower(), said
    assert run_posts(h) == []
    [denied] = [r for r in await h.store.actions.list() if r.kind == "pipeline"]
    assert denied.status == "denied" and denied.actor_id == "U0BOB" and denied.pipeline == "deploy-api"
    await h.send.slash_command("run deploy-api env=prod version=1", user="U0ALICE", channel=ALERTS)
    await wait_for(lambda: bot_messages(h) or None, timeout=10)
    assert len(run_posts(h)) == 1
    seen = len(h.slack.responses)
    await h.send.slash_command("whoami", user="U0ALICE", channel=ALERTS)
    await wait_for(lambda: len(h.slack.responses) > seen or None, timeout=10)
    assert "*run*" in json.dumps(h.slack.responses[-1].body, ensure_ascii=False)


async def test_the_workflow_step_delivered_twice_runs_once_and_completes_with_the_link(h: Harness) -> None:
    inputs = {"pipeline": "deploy-api", "inputs": "env=prod\nversion=2.4.1\n", "wait": False, "user": {"id": "U0ALICE"}}
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0STEP1")
    assert h.send.last_payload is not None
    first_event = h.send.last_payload["event_id"]
    step = h.slack.function_executions["Fx0STEP1"]
    await wait_for(lambda: step["state"] != "running" or None, timeout=10)
    assert step["state"] == "completed", step
    outputs = step["outputs"]
    assert outputs["status"] == "STARTED" and outputs["execution_id"]
    assert outputs["execution_url"].endswith(outputs["execution_id"])
    # Slack redelivers it (a retry of the same event, and the same step as a new event).
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0STEP1", retry_num=1, event_id=first_event)
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0STEP1")
    await wait_for(lambda: len(h.slack.calls_to("functions.completeSuccess")) >= 2 or None, timeout=10)
    assert len(run_posts(h)) == 1
    [body] = run_posts(h)
    assert body["input"] == {"env": "prod", "version": "2.4.1"}


async def test_a_step_delivered_again_while_its_slow_run_is_in_flight_is_not_failed(h: Harness) -> None:
    h.sim.inject(Fault(method="POST", path=RUNS, delay=1.5))  # a slow Code Stream, still under the timeout
    inputs = {"pipeline": "nightly-report", "user": {"id": "U0ALICE"}}
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0SLOW")
    await wait_for(lambda: h.sim.count("POST", "/codestream/api/pipelines/") == 1 or None, timeout=10)
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0SLOW")  # a new event, same step
    step = h.slack.function_executions["Fx0SLOW"]
    await wait_for(lambda: step["state"] != "running" or None, timeout=15)
    assert step["state"] == "completed", step  # the first delivery's run, never "did not run"
    assert h.slack.calls_to("functions.completeError") == []
    assert len(run_posts(h)) == 1


async def test_the_workflow_step_fails_with_a_clear_message(h: Harness) -> None:
    inputs = {"pipeline": "deploy-api", "inputs": "env=prod", "user": {"id": "U0ALICE"}}
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0STEP2")
    step = h.slack.function_executions["Fx0STEP2"]
    await wait_for(lambda: step["state"] != "running" or None, timeout=10)
    assert step["state"] == "failed" and "version" in step["error"], step
    assert run_posts(h) == []


async def test_the_workflow_step_can_wait_for_the_execution_to_end(h: Harness) -> None:
    assert h.bot.handlers is not None
    h.bot.handlers.runs.step_poll_seconds = 0.05
    inputs = {"pipeline": "nightly-report", "wait": True, "user": {"id": "U0ALICE"}}
    await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0STEP3")
    step = h.slack.function_executions["Fx0STEP3"]
    await wait_for(lambda: step["state"] != "running" or None, timeout=15)
    assert step["state"] == "completed" and step["outputs"]["status"] == "COMPLETED", step


async def test_a_run_code_stream_made_late_is_found_by_the_reconciler_and_shown_in_place(h: Harness) -> None:
    # The connection breaks after the request left; Code Stream starts the run a second later.
    h.sim.inject(Fault(method="POST", path=RUNS, reset=True, apply_after=1.0))
    await h.send.slash_command("run nightly-report", channel=ALERTS)
    [unknown] = await wait_for(lambda: bot_messages(h) or None, timeout=15)
    assert "do not run it again" in everything(unknown)

    def settled() -> Message | None:
        current = h.slack.message(ALERTS, unknown.ts)
        return current if current is not None and "ran" in everything(current) else None

    shown = await wait_for(settled, timeout=15)  # the same message, now saying what ran
    assert shown is not None and "nightly-report #1" in everything(shown)
    assert len(run_posts(h)) == 1 and len(bot_messages(h)) == 1
    [row] = [r for r in await h.store.actions.list() if r.kind == "pipeline"]
    assert row.status == "started" and row.execution_id is not None

    def followed() -> Message | None:
        current = h.slack.message(ALERTS, unknown.ts)
        return current if current is not None and "COMPLETED" in everything(current) else None

    assert await wait_for(followed, timeout=15) is not None  # then followed to its end


async def test_a_pipeline_named_by_id_or_link_follows_the_show_rules_too(bob_may_not_run: Harness) -> None:
    h = bob_may_not_run
    hidden = h.sim.pipelines.add("vault-rotate", project="Security", inputs={"scope": ""}, mandatory=("scope",))
    for ref in (hidden["id"], f"https://vra.example.com/codestream/#/pipelines/{hidden['id']}/edit"):
        seen = len(h.slack.responses)
        await h.send.slash_command(f"run {ref}", user="U0ALICE", channel=ALERTS)
        await wait_for(lambda: len(h.slack.responses) > seen or None, timeout=10)  # noqa: B023 - awaited here
        said = json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
        assert "that you may see" in said and "scope" not in said and "Security" not in said, said
    assert h.slack.views == [] and run_posts(h) == []


async def test_a_step_waiting_when_the_bot_stops_is_completed_with_the_status_so_far(tmp_path: Path) -> None:
    """A shutdown (a deploy) must not leave the workflow hanging on a step nobody will finish."""
    async with running_harness(tmp_path) as h:
        h.sim.execution_duration = 600.0  # still running when the bot stops
        inputs = {"pipeline": "nightly-report", "wait": True, "user": {"id": "U0ALICE"}}
        await h.send.function_executed("run_pipeline", inputs, execution_id="Fx0DEPLOY")
        await wait_for(lambda: h.sim.count("POST", "/codestream/api/pipelines/") == 1 or None, timeout=10)
        await wait_for(lambda: h.sim.count("GET", "/codestream/api/executions/") >= 1 or None, timeout=10)
        step = h.slack.function_executions["Fx0DEPLOY"]
        assert step["state"] == "running"
        await h.bot.stop()
        assert step["state"] == "completed", step
        assert step["outputs"]["status"] == "RUNNING" and step["outputs"]["execution_id"]
