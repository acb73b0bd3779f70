"""The storm digest's renderer: within Slack's limits whatever the rows hold, and it says what
each row's state allows (a menu while it still fails, the link once someone acted)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.codestream.models import parse_event
from bot.core.digests import MAX_ROWS, RowState, row_for
from bot.core.failures import FailureContext
from bot.simulator.slack_blocks import validate_blocks
from bot.slack.render.digest import ACTION_DIGEST_ROW, parse_row_value, render_digest
from bot.store import DigestRow

NOW = datetime(2026, 12, 6, 9, 41, tzinfo=UTC)


def row(n: int, *, pipeline: str | None = None, state: RowState | None = None) -> DigestRow:
    event = parse_event(
        "git",
        {
            "id": f"7f3a1b2c-0000-4000-8000-{n:012d}",
            "pipeline": pipeline or f"storm-{n:02d}",
            "project": "Payments",
            "executionStatus": "FAILED",
            "executionIndex": n,
            "executionLink": f"/codestream/api/executions/0f3a1b2c-0000-4000-8000-{n:012d}",
            "subject": "Bump the shared library <to> 2.0 & friends",
            "targetBranch": "main",
        },
    )
    failure = FailureContext(stage="Build", task="compile", message="npm ERR! 404\n" * 50)
    made = row_for(event, failure)
    made.state = state.model_dump(exclude_none=True) if state is not None else None
    made.added_at = NOW
    return made


def link(execution_id: str | None) -> str | None:
    return f"https://vra.example.com/codestream/#/executions/{execution_id}" if execution_id else None


def test_a_full_digest_of_long_names_stays_within_slacks_limits() -> None:
    rows = [row(n, pipeline="p" * 400 + f"-{n}") for n in range(1, MAX_ROWS + 1)]
    message = render_digest(rows, mention="<!subteam^S0PAY>", execution_link=link, now=NOW)
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= 50 and len(message.text) <= 600
    shown = json.dumps(message.blocks)
    assert "Rerun all failed (40)" in shown and "40 pipeline failures" in shown
    assert "&lt;to&gt; 2.0 &amp; friends" in shown  # escaped, never raw mrkdwn


def test_rows_someone_acted_on_lose_their_menu_and_leave_rerun_all() -> None:
    acted = RowState(verb="rerun", actor_id="U0ALICE", status="started", execution_index=2, final_status="RUNNING")
    fixed = RowState(verb="rerun", actor_id="U0ALICE", status="started", final_status="COMPLETED")
    message = render_digest(
        [row(1), row(2, state=acted), row(3, state=fixed)], mention=None, execution_link=link, now=NOW
    )
    assert validate_blocks(message.blocks) == []
    menus = [b["accessory"] for b in message.blocks if b.get("accessory", {}).get("action_id") == ACTION_DIGEST_ROW]
    assert len(menus) == 1  # only the row still failing offers Rerun / Resume
    [first] = menus
    verb, kind, event_id, listed = parse_row_value(first["options"][0]["value"]) or ("", "", "", None)
    assert (verb, kind, listed) == ("rerun", "git", 1) and event_id.endswith("000000000001")
    shown = json.dumps(message.blocks)
    assert "Rerun all failed (1)" in shown and "1 still failing" in shown and "1 fixed" in shown


def test_one_failure_is_said_in_the_singular() -> None:
    message = render_digest([row(1)], mention=None, execution_link=link, now=NOW)
    assert "1 pipeline failure within" in json.dumps(message.blocks)
