"""Why an execution failed, for Slack: "Failed at Deploy › helm-upgrade" and the first lines of
the error in a code block — escaped, clipped to Block Kit's limits, never able to close the block
early. The text was redacted by the core (``bot.core.failures``)."""

from __future__ import annotations

from typing import Any, Final

from bot.core.failures import FailureContext
from bot.slack.render import text as t
from bot.slack.render.base import section

ERROR_LINES: Final = 8  # lines of the error shown; the rest is one click away in vRA
ERROR_LEN: Final = 1200  # characters of the error shown (a section holds 3000)
_FENCE: Final = "```"


def code_block(text: str, *, max_lines: int = ERROR_LINES) -> str:
    body = t.clip_block(text, ERROR_LEN, max_lines=max_lines).replace(_FENCE, "`\u200b``")
    return f"{_FENCE}{body}{_FENCE}" if body else ""


def failure_section(failure: FailureContext | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    lines = []
    if failure.where:
        lines.append(f"*Failed at:* {t.clip(failure.where, 300)}")
    if failure.message:
        block = code_block(failure.message)
        if block:
            lines.append(block)
    if failure.logs:
        block = code_block("\n".join(failure.logs), max_lines=len(failure.logs))
        if block:
            lines.append(f"_Last lines of its log:_\n{block}")
    for name, value in failure.starred:
        lines.append(f"⭐ *{t.clip(name, 80)}*: `{t.clip(value, 200)}`")
    return section("\n".join(lines)) if lines else None


def failure_text(failure: FailureContext | None) -> str:
    """For the notification text: ``failed at Deploy › helm-upgrade``."""
    if failure is None or not failure.where:
        return ""
    return f"failed at {t.clip(failure.where, 120)}"
