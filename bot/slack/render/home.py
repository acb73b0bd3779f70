"""The App Home tab: what needs attention (unresolved failures the person may see, each with
Rerun and Resume), what they did lately and how it went, and whether the bot is healthy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from bot.codestream.models import Event
from bot.slack.render import text as t
from bot.slack.render.alert import home_item
from bot.slack.render.audit import audit_line
from bot.slack.render.base import MAX_BLOCKS, context, header, section
from bot.store import ActionRecord

MAX_FAILURES: Final = 10  # each is two blocks; the whole view stays within a message's 50
MAX_ACTIONS: Final = 10
_HEALTH_LABELS: Final = {"codestream": "Code Stream", "watcher": "Failure watcher", "alerts": "Undeliverable alerts"}


def render_home(
    failures: Sequence[Event] | None,
    *,
    execution_urls: Mapping[str, str],
    actions: Sequence[ActionRecord],
    health: Mapping[str, str],
    now: datetime,
    note: str | None = None,
    failures_error: str | None = None,
) -> dict[str, Any]:
    """The ``home`` view for one person. ``failures`` None: Code Stream could not be read
    (``failures_error`` says why); ``note``: the outcome of what they just did here."""
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append(section(t.truncate(note, 2900)))
    blocks.append(header("Failing now (last 24 hours)"))
    if failures is None:
        blocks.append(section(f"⚠️ Code Stream could not be read: {t.clip(failures_error or 'unknown error', 300)}"))
    elif not failures:
        blocks.append(section("Nothing you may see is failing 🎉"))
    else:
        for event in failures[:MAX_FAILURES]:
            blocks.extend(home_item(event, execution_urls.get(event.id or ""), now))
        if len(failures) > MAX_FAILURES:
            more = len(failures) - MAX_FAILURES
            blocks.append(context(f"…and {more} more: `/codestream list` in a channel lists them."))
    blocks.append(header("Your recent actions"))
    if actions:
        lines = [audit_line(row) for row in actions[:MAX_ACTIONS]]
        blocks.append(section(t.truncate("\n".join(lines), 2900)))
    else:
        blocks.append(section("You have not acted on anything in the last 7 days."))
    blocks.append(header("Bot health"))
    health_lines = [f"*{_HEALTH_LABELS.get(k, k)}:* {t.clip(v, 300)}" for k, v in health.items()]
    blocks.append(section("\n".join(health_lines) or "unknown"))
    blocks.append(context(f"Updated {t.slack_date(now)} · opens of this tab refresh it at most every 30 s"))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}
