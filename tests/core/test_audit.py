"""The audit trail: a row for every resume/rerun request, readable in Slack and exportable."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from pathlib import Path

import pytest

from bot.core.audit import AuditQuery, parse_audit_args, parse_duration
from bot.core.errors import UsageError
from bot.simulator import SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import wait_for
from tests.harness import Harness, bot_cli, wait_for_async, wait_for_rows

UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def make_history(h: Harness) -> None:
    """started, duplicate, failed (not found), started again — from two people."""
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
    await wait_for_rows(h, 1)
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0BOB")
    await wait_for_rows(h, 2)
    await h.send.slash_command(f"resume {UNKNOWN}", user="U0BOB")
    await wait_for_rows(h, 3)
    await h.send.slash_command(f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}", user="U0ALICE")
    await wait_for_rows(h, 4)
    await wait_for_async(lambda: _all_settled(h))


async def _all_settled(h: Harness) -> bool:
    return all(r.status != "pending" for r in await h.store.actions.list())


async def test_every_request_is_a_row_with_who_what_where_and_result(harness: Harness) -> None:
    await make_history(harness)
    rows = await harness.store.actions.list()
    summary = [(r.actor_id, r.actor_name, r.surface, r.channel_id, r.kind, r.action, r.status) for r in rows]
    assert summary == [
        ("U0ALICE", "alice", "slash", "C0ALERTS", "gerrit", "rerun", "started"),
        ("U0BOB", "bob", "slash", "C0ALERTS", "git", "resume", "failed"),
        ("U0BOB", "bob", "slash", "C0ALERTS", "git", "rerun", "duplicate"),
        ("U0ALICE", "alice", "slash", "C0ALERTS", "git", "rerun", "started"),
    ]
    started = rows[3]
    assert started.execution_id and started.execution_link and started.finished_at and started.request_id
    assert rows[2].duplicate_of == started.id
    assert rows[1].error_class == "NotFound"


async def test_slash_audit_lists_filters_and_pages(harness: Harness) -> None:
    await make_history(harness)

    async def audit(words: str) -> str:
        seen = len(harness.slack.responses)
        await harness.send.slash_command(f"audit {words}".strip(), user="U0CAROL")
        answers = await wait_for(lambda: harness.slack.responses[seen:])
        assert answers[0].action == "ephemeral"
        return json.dumps(answers[0].body)

    text = await audit("")
    assert text.count("<@U0ALICE>") == 2 and text.count("<@U0BOB>") == 2
    assert "duplicate" in text and "NotFound" in text

    text = await audit("<@U0BOB|bob> --since 1h")
    assert "<@U0ALICE>" not in text and "<@U0BOB>" in text

    assert "gerrit" not in await audit(SAMPLE_FAILED_GIT_ID)
    assert "not a duration" in await audit("--since 1x")
    assert "No more audit entries" in await audit("--page 2")
    assert len(await harness.store.actions.list()) == 4  # reading the audit adds no rows


def test_audit_arguments() -> None:
    assert parse_audit_args([]) == AuditQuery()
    query = parse_audit_args(["<@U0BOB|bob>", "--since=24h", "--page", "3"])
    assert (query.actor_id, query.since.total_seconds(), query.page) == ("U0BOB", 86_400, 3)
    assert parse_audit_args([SAMPLE_FAILED_GIT_ID]).event_id == SAMPLE_FAILED_GIT_ID
    assert parse_duration("2w").days == 14
    for bad in (["@bob"], ["--since"], ["--page", "0"], ["--colour", "red"], ["not-an-id"]):
        with pytest.raises(UsageError):
            parse_audit_args(bad)


async def test_cli_export_csv_and_json(harness: Harness, tmp_path: Path) -> None:
    await make_history(harness)

    async def export(fmt: str) -> str:
        proc = await bot_cli(
            "audit",
            "--since",
            "24h",
            "--format",
            fmt,
            env={"PATH": "/usr/bin:/bin", "BOT_DATABASE_URL": harness.settings.bot_database_url},
            cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    rows = list(csv.DictReader(io.StringIO(await export("csv"))))
    assert [r["status"] for r in rows] == ["started", "failed", "duplicate", "started"]
    assert rows[0]["actor_name"] == "alice" and rows[0]["created_at"].endswith("+00:00")
    records = json.loads(await export("json"))
    assert [r["actor_id"] for r in records] == ["U0ALICE", "U0BOB", "U0BOB", "U0ALICE"]


async def test_one_structured_log_line_per_action_without_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core.perform")
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
    await wait_for_rows(harness, 1)
    await wait_for(lambda: [r for r in caplog.records if r.name == "bot.core.perform"])
    [record] = [r for r in caplog.records if r.name == "bot.core.perform"]
    fields = vars(record)
    assert (fields["actor_id"], fields["actor_name"], fields["surface"], fields["result"]) == (
        "U0ALICE",
        "alice",
        "slash",
        "started",
    )
    assert fields["event_id"] == SAMPLE_FAILED_GIT_ID and fields["request_id"]
    assert "xoxb" not in caplog.text and "sim-refresh-token" not in caplog.text


async def test_audit_pages_newest_first(harness: Harness) -> None:
    from bot.store import ActionRecord

    for n in range(20):
        await harness.store.actions.record(
            ActionRecord(
                kind="git",
                event_id=f"00000000-0000-4000-8000-{n:012d}",
                action="rerun",
                actor_id="U0ALICE",
                surface="slash",
                status="started",
            )
        )
    await harness.send.slash_command("audit")
    [first] = await wait_for(lambda: harness.slack.responses)
    text = json.dumps(first.body)
    assert "00000000`" in text and text.count("<@U0ALICE>") == 15
    assert "/codestream audit --since 1w --page 2" in text
    await harness.send.slash_command("audit --since 1w --page 2")
    second = (await wait_for(lambda: len(harness.slack.responses) == 2 and harness.slack.responses))[-1]
    assert json.dumps(second.body).count("<@U0ALICE>") == 5


@pytest.mark.parametrize("since", ["999999d", "999999w", "200000h"])
async def test_absurd_durations_get_a_usage_error_not_a_crash(harness: Harness, tmp_path: Path, since: str) -> None:
    with pytest.raises(UsageError, match="at most"):
        parse_duration(since)
    await harness.send.slash_command(f"audit --since {since}")
    [answer] = await wait_for(lambda: harness.slack.responses, timeout=10)
    assert "at most 3650d" in json.dumps(answer.body) and "went wrong" not in json.dumps(answer.body)
    proc = await bot_cli(
        "audit",
        "--since",
        since,
        env={"PATH": "/usr/bin:/bin", "BOT_DATABASE_URL": harness.settings.bot_database_url},
        cwd=tmp_path,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2 and b"Traceback" not in err and b"at most 3650d" in err


async def test_cli_limit_out_of_range_is_a_usage_error(harness: Harness, tmp_path: Path) -> None:
    for limit in ("0", "-5", "99999999999"):
        env = {"PATH": "/usr/bin:/bin", "BOT_DATABASE_URL": harness.settings.bot_database_url}
        proc = await bot_cli("audit", "--limit", limit, env=env, cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 2 and b"Traceback" not in err and b"--limit" in err


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
async def test_csv_export_escapes_cells_a_spreadsheet_would_run(harness: Harness, tmp_path: Path, name: str) -> None:
    from bot.core.audit import export_rows
    from bot.store import ActionRecord

    row = ActionRecord(kind="git", event_id="e", action="rerun", actor_id="U0EVE", actor_name=name, surface="slash")
    [exported] = list(csv.DictReader(io.StringIO(export_rows([row], "csv"))))
    assert exported["actor_name"] == "'" + name  # OWASP: a leading quote makes it text
    assert json.loads(export_rows([row], "json"))[0]["actor_name"] == name  # JSON is data, left as is
