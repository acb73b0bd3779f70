"""Every message kind drawn from hostile values in every field that comes from outside (Code
Stream, people, Slack): no broadcast or mention syntax reaches Slack — not in the blocks, and not
in the notification ``text`` (which Slack uses for push notifications and the banner)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot.codestream.errors import Forbidden
from bot.codestream.executions import Execution
from bot.codestream.models import parse_event
from bot.codestream.user_operations import UserOperation
from bot.core.approvals.decide import DecisionOutcome, DecisionRequest
from bot.core.approvals.ports import ApprovalEnd
from bot.core.control.requests import ControlOutcome, ControlRequest
from bot.core.digests import row_for
from bot.core.failures import FailureContext
from bot.core.requests import Actor
from bot.simulator.slack_blocks import validate_blocks
from bot.slack.render.approval import (
    approval_title,
    render_approval_end,
    render_approval_request,
    render_decision_modal,
    render_decision_outcome,
)
from bot.slack.render.base import SlackMessage
from bot.slack.render.control import render_control_outcome
from bot.slack.render.digest import render_digest

NOW = datetime(2026, 12, 7, 9, 41, tzinfo=UTC)
# Each would notify or mislead people if it reached Slack as markup.
BROADCASTS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S0EVIL>", "<@U0EVIL>", "<https://evil.example|x>")
HOSTILE = " & ".join(BROADCASTS) + " *bold* `tick` > quote"


def operation(**overrides: object) -> UserOperation:
    fields: dict[str, object] = {
        "id": "6b2e4c1a-0000-4000-8000-000000000001",
        "name": HOSTILE,
        "summary": HOSTILE,
        "description": HOSTILE,
        "status": "ACTIVE",
        "approvers": ["alice@example.com"],
        "approverGroups": [HOSTILE],
        "requestedBy": HOSTILE,
        "respondedBy": HOSTILE,
        "responseMessage": HOSTILE,
        "pipelineName": HOSTILE,
        "project": HOSTILE,
        "executionIndex": 7,
    }
    fields.update(overrides)
    return UserOperation.model_validate(fields)


def execution() -> Execution:
    return Execution.model_validate(
        {
            "id": "0f3a1b2c-0000-4000-8000-000000000001",
            "name": HOSTILE,
            "project": HOSTILE,
            "index": 3,
            "status": "RUNNING",
            "statusMessage": HOSTILE,
        }
    )


def digest() -> SlackMessage:
    rows = []
    for n in range(1, 8):
        event = parse_event(
            "git",
            {
                "id": f"7f3a1b2c-0000-4000-8000-{n:012d}",
                "pipeline": HOSTILE,
                "project": HOSTILE,
                "repo": HOSTILE,
                "targetBranch": HOSTILE,
                "subject": HOSTILE,
                "executionStatus": "FAILED",
                "executionIndex": n,
                "executionLink": f"/codestream/api/executions/0f3a1b2c-0000-4000-8000-{n:012d}",
            },
        )
        row = row_for(event, FailureContext(stage=HOSTILE, task=HOSTILE, message=HOSTILE))
        row.added_at = NOW
        rows.append(row)
    return render_digest(rows, mention=None, execution_link=lambda _: None, now=NOW)


def decision(status: str) -> SlackMessage:
    request = DecisionRequest("6b2e4c1a-0000-4000-8000-000000000001", "APPROVED", HOSTILE, Actor("U0ALICE"), "button")
    error = Forbidden(server_message=HOSTILE) if status == "failed" else None
    return render_decision_outcome(DecisionOutcome(request, status, operation(), error))  # type: ignore[arg-type]


def control(status: str) -> SlackMessage:
    request = ControlRequest("cancel", "0f3a1b2c-0000-4000-8000-000000000001", Actor("U0ALICE", HOSTILE), "button")
    error = Forbidden(server_message=HOSTILE) if status == "failed" else None
    outcome = ControlOutcome(request, status, execution(), "https://vra.example.com/x", error)  # type: ignore[arg-type]
    return render_control_outcome(outcome, now=NOW)


MESSAGES: dict[str, Callable[[], SlackMessage]] = {
    "approval request": lambda: render_approval_request(operation(), execution_url=None),
    "approval approved in Slack": lambda: render_approval_end(
        operation(status="APPROVED"), ApprovalEnd("APPROVED", "slack", "U0ALICE", HOSTILE), execution_url=None
    ),
    "approval rejected in Code Stream": lambda: render_approval_end(
        operation(status="REJECTED"), ApprovalEnd("REJECTED", "codestream", HOSTILE, HOSTILE), execution_url=None
    ),
    "decision form": lambda: SlackMessage(
        text="",
        blocks=render_decision_modal(str(operation().id), "APPROVED", title=approval_title(operation()))["blocks"],
    ),
    "decision done": lambda: decision("done"),
    "decision failed": lambda: decision("failed"),
    "decision ended": lambda: decision("ended"),
    "storm digest": digest,
    "control done": lambda: control("done"),
    "control failed": lambda: control("failed"),
}


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_no_outside_value_reaches_slack_as_markup(kind: str) -> None:
    message = MESSAGES[kind]()
    assert validate_blocks(message.blocks) == []
    for where, shown in (("text", message.text), ("blocks", json.dumps(message.blocks, ensure_ascii=False))):
        for markup in BROADCASTS:
            assert markup not in shown, f"{kind}: {markup} raw in its {where}"
        assert "&amp;amp;" not in shown and "&amp;lt;" not in shown, f"{kind}: escaped twice in its {where}"


def test_usage_hints_in_lists_show_their_placeholder_escaped() -> None:
    from bot.slack.render.mute import render_mutes
    from bot.slack.render.subscriptions import render_subscriptions

    mutes = render_mutes([(1, "payments-ci", None, "U0ALICE", 0)], now=NOW)
    subscriptions = render_subscriptions([], configured=[])
    for message in (mutes, subscriptions):
        shown = json.dumps(message.blocks)
        assert "<n>" not in shown and "&lt;n&gt;" in shown  # a raw <n> is dropped by Slack as markup
