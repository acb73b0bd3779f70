"""Approval requests: a Code Stream user operation waiting for a decision, with Approve and
Reject (each opens a modal for an optional response message), and the same message once it
ended ("✅ Approved by @alice: looks good"). Pure; every value escaped and clipped."""

from __future__ import annotations

import json
from typing import Any, Final

from bot.codestream.errors import InvalidId
from bot.codestream.ids import validate_server_id
from bot.codestream.user_operations import Decision, UserOperation
from bot.core.approvals.decide import DecisionOutcome
from bot.core.approvals.ports import ApprovalEnd
from bot.core.errors import UsageError
from bot.slack.render import text as t
from bot.slack.render.base import (
    SlackMessage,
    actions,
    button,
    cap_blocks,
    context,
    fallback_text,
    field,
    header,
    section,
)
from bot.slack.render.errors import describe_error

ACTION_APPROVE: Final = "codestream_approval_approve"
ACTION_REJECT: Final = "codestream_approval_reject"
DECISION_VIEW: Final = "codestream_approval_decision"  # the modal's callback_id
MESSAGE_BLOCK: Final = "approval_message"
MESSAGE_INPUT: Final = "response_message"
_ENDS: Final = {
    "APPROVED": ("✅", "Approved"),
    "REJECTED": ("❌", "Rejected"),
    "EXPIRED": ("⌛", "Expired"),
    "CANCELED": ("⛔", "Canceled"),
}


def approval_title(operation: UserOperation) -> str:
    """ "payments-deploy #12" (plain text: not escaped)."""
    return f"{t.one_line(operation.pipeline or '') or 'A pipeline'}{_number(operation)}"


def _number(operation: UserOperation) -> str:
    return f" #{operation.execution_index}" if operation.execution_index is not None else ""


def _title(operation: UserOperation) -> str:
    """The pipeline and run number, escaped (mrkdwn)."""
    return f"{t.clip(operation.pipeline, 80, default='A pipeline')}{_number(operation)}"


def _facts(operation: UserOperation, execution_url: str | None) -> list[str]:
    execution = _title(operation)
    if execution_url and t.safe_url(execution_url):
        # A link's label is raw text: link() escapes it (and keeps it from ending the link).
        execution = t.link(execution_url, approval_title(operation))
    facts = [
        field("Execution", execution),
        field("Project", t.clip(operation.project, 80, default="—")),
        field("Requested by", t.clip(operation.requested_by, 80, default="—")),
        field("Approvers", t.clip(", ".join(operation.approvers), 300, default="—")),
    ]
    if operation.approver_groups:
        facts.append(field("Approver groups", t.clip(", ".join(operation.approver_groups), 300)))
    expires = operation.expires_at
    if expires is not None:
        facts.append(field("Expires", t.slack_date(expires)))
    return facts


def _body(
    operation: UserOperation, execution_url: str | None, mention: str | None, *, pending: bool = True
) -> list[dict[str, Any]]:
    lead = f"{mention} " if mention else ""
    summary = t.clip(operation.summary or operation.name, 300, default="Approval requested")
    blocks: list[dict[str, Any]] = [
        header(f"🛂 {'Approval needed' if pending else 'Approval'}: {_title(operation)}"),
        section(f"{lead}*{summary}*", fields=_facts(operation, execution_url)),
    ]
    if operation.description and operation.description.strip():
        blocks.append(section(t.quote(t.clip_block(operation.description, 1500, max_lines=15))))
    return blocks


def decision_value(operation_id: str) -> str:
    return json.dumps({"op": operation_id}, separators=(",", ":"))


def parse_decision_value(value: str) -> str:
    """The operation id a button names; UsageError for anything else."""
    try:
        data = json.loads(value) if len(value) <= 256 else None
        return validate_server_id(str(data.get("op"))) if isinstance(data, dict) else validate_server_id("")
    except (ValueError, InvalidId) as exc:
        raise UsageError("That button is not one of mine (bad value).") from exc


def render_approval_request(
    operation: UserOperation, *, execution_url: str | None, mention: str | None = None
) -> SlackMessage:
    value = decision_value(str(operation.id))
    buttons = [
        button("Approve", action_id=ACTION_APPROVE, value=value, style="primary"),
        button("Reject", action_id=ACTION_REJECT, value=value, style="danger"),
    ]
    blocks = [
        *_body(operation, execution_url, mention),
        actions(buttons),
        context("Approve or reject here or in Code Stream."),
    ]
    text = fallback_text(f"🛂 Approval needed: {_title(operation)}", t.clip(operation.summary, 300))
    return SlackMessage(text=text, blocks=cap_blocks(blocks))


def end_line(end: ApprovalEnd) -> str:
    emoji, word = _ENDS.get(end.status, ("•", end.status.title()))
    if end.status in ("EXPIRED", "CANCELED") and not end.by:
        return f"{emoji} *{word}*"
    who = t.user_mention(end.by) if end.decided_in == "slack" else t.clip(end.by, 80, default="someone")
    where = "" if end.decided_in == "slack" else " in Code Stream"
    said = f": {t.clip(end.message, 500)}" if end.message and end.message.strip() else ""
    return f"{emoji} *{word}* by {who}{where}{said}"


def render_approval_end(operation: UserOperation, end: ApprovalEnd, *, execution_url: str | None) -> SlackMessage:
    line = end_line(end)
    blocks = [*_body(operation, execution_url, None, pending=False), section(line)]
    return SlackMessage(
        text=fallback_text(f"Approval {_title(operation)}", line.replace("*", "")), blocks=cap_blocks(blocks)
    )


def render_decision_modal(operation_id: str, decision: Decision, *, title: str) -> dict[str, Any]:
    """The modal Approve/Reject opens: an optional response message; ``private_metadata`` says
    which operation and decision (the message is found from the store)."""
    word = "Approve" if decision == "APPROVED" else "Reject"
    return {
        "type": "modal",
        "callback_id": DECISION_VIEW,
        "private_metadata": json.dumps({"op": operation_id, "decision": decision}, separators=(",", ":")),
        "title": {"type": "plain_text", "text": t.truncate(f"{word} approval", 24)},
        "submit": {"type": "plain_text", "text": word},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"{word} *{t.clip(title, 150)}*?"),
            {
                "type": "input",
                "block_id": MESSAGE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Response message"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": MESSAGE_INPUT,
                    "multiline": True,
                    "max_length": 1000,
                },
            },
        ],
    }


def parse_decision_submission(view: dict[str, Any]) -> tuple[str, Decision, str]:
    """(operation id, decision, response message) from a submitted modal; UsageError otherwise."""
    try:
        meta = json.loads(str(view.get("private_metadata") or ""))
        operation_id = validate_server_id(str(meta.get("op")))
        decision = meta.get("decision")
    except (ValueError, AttributeError, InvalidId) as exc:
        raise UsageError("That form is not one of mine.") from exc
    if decision not in ("APPROVED", "REJECTED"):
        raise UsageError("That form is not one of mine.")
    values = ((view.get("state") or {}).get("values") or {}).get(MESSAGE_BLOCK) or {}
    message = (values.get(MESSAGE_INPUT) or {}).get("value") or ""
    return operation_id, decision, str(message)[:1000]


def render_decision_outcome(outcome: DecisionOutcome) -> SlackMessage:
    """The answer only the person who decided sees (a done decision shows in the request itself)."""
    word = "Approval" if outcome.request.decision == "APPROVED" else "Rejection"
    title = _title(outcome.operation) if outcome.operation is not None else "this approval"
    if outcome.status == "done":
        head = f"{'✅' if outcome.request.decision == 'APPROVED' else '❌'} *{word} sent* for {title}."
    elif outcome.status == "ended":
        status = (outcome.operation.status or "decided") if outcome.operation is not None else "decided"
        head = f"ℹ️ *Nothing sent:* {title} is already {status.lower()} (in Code Stream)."
    elif outcome.status == "duplicate":
        who = t.user_mention(outcome.prior_actor) if outcome.prior_actor else "someone"
        head = f"🔁 *Already in hand* — {who} is deciding this approval right now."
    elif outcome.status == "unknown":
        head = (
            f"⏳ *{word} sent — outcome not known yet.* Code Stream did not answer clearly; the bot reads the "
            "approval back and updates its message. Do not decide again meanwhile."
        )
    elif outcome.status == "not_started":
        head = f"↩️ *{word} not sent* — Code Stream could not be reached; safe to try again."
    elif outcome.status == "denied":
        head = "🚫 *You may not decide this approval.*"
    else:
        head = f"❌ *{word} failed*"
    blocks = [section(head)]
    if outcome.error is not None and outcome.status in ("failed", "denied", "not_started"):
        view = describe_error(outcome.error)
        blocks.append(section(view.mrkdwn if outcome.status != "denied" else t.escape(outcome.error.user_message)))
    error = t.clip(outcome.error.user_message, 300) if outcome.error is not None else ""
    return SlackMessage(text=fallback_text(head.replace("*", ""), error), blocks=blocks)
