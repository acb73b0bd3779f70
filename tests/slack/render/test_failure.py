"""The failure context in Block Kit: escaped, clipped, and unable to close its code block early."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.codestream.models import parse_event
from bot.core.failures import FailureContext
from bot.simulator.slack_blocks import validate_blocks
from bot.slack.render.failure import ERROR_LINES, failure_section
from bot.slack.render.messages import render_alert

EVENT = parse_event(
    "git",
    {
        "id": "8365ef3b-8bf3-48aa-bd5d-7113fcff827c",
        "pipeline": "payments-ci",
        "project": "Payments",
        "executionStatus": "FAILED",
        "executionIndex": 6,
        "subject": "Fix rounding",
    },
)


def text_of(section: dict[str, object]) -> str:
    body = section["text"]
    assert isinstance(body, dict)
    return str(body["text"])


def test_the_alert_names_the_stage_and_task_and_quotes_the_error() -> None:
    failure = FailureContext("Deploy", "helm-upgrade", "Error: UPGRADE FAILED\nsecond line")
    message = render_alert(EVENT, execution_url=None, now=datetime.now(UTC), failure=failure)
    assert not validate_blocks(message.blocks)
    texts = [text_of(b) for b in message.blocks if b.get("type") == "section" and "text" in b]
    assert "*Failed at:* Deploy › helm-upgrade\n```Error: UPGRADE FAILED\nsecond line```" in texts
    assert "failed at Deploy › helm-upgrade" in message.text


def test_hostile_errors_are_escaped_clipped_and_cannot_break_out_of_the_block() -> None:
    lines = "\n".join(f"line {n}" for n in range(50))
    error = "<!channel> ``` *bold* <https://evil.example|click>\n" + lines + "x" * 9000
    section = failure_section(FailureContext("<Deploy>", "t&t", error))
    assert section is not None
    text = text_of(section)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&lt;Deploy&gt;" in text
    assert text.count("```") == 2  # the error's own fence was neutralised
    assert text.count("\n") <= ERROR_LINES + 2 and len(text) < 3000
    assert not validate_blocks([section])


def test_nothing_to_say_is_no_section() -> None:
    assert failure_section(None) is None and failure_section(FailureContext()) is None
