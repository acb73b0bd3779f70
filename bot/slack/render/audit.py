"""The ``/codestream audit`` answer: recent audit rows, newest first, one line each."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from bot.core.audit import AuditQuery
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, cap_blocks, context, fallback_text, section
from bot.store import ActionRecord

_STATUS_EMOJI: Final = {
    "started": "✅",
    "failed": "❌",
    "unknown": "⚠️",
    "not_started": "↩️",
    "denied": "🚫",
    "duplicate": "🔁",
    "claimed": "⏳",
    "pending": "⏳",
}


def _line(row: ActionRecord) -> str:
    emoji = _STATUS_EMOJI.get(row.status, "•")
    who = t.user_mention(row.actor_id)
    what = f"{t.escape(row.action)} {t.escape(row.kind)} `{t.escape(row.event_id[:8])}`"
    if row.kind == "pipeline":  # a run: its key names no event; the pipeline says what ran
        what = f"{t.escape(row.action)} pipeline *{t.clip(row.pipeline, 80, default='?')}*"
    where = f" in <#{row.channel_id}>" if row.channel_id and row.channel_id.isalnum() else ""
    status = t.escape(row.status.replace("_", " "))
    if row.error_class and row.status in ("failed", "denied", "unknown", "not_started"):
        status += f" ({t.escape(row.error_class)})"
    execution = f" · execution `{t.escape(row.execution_id[:8])}`" if row.execution_id else ""
    return (
        f"{emoji} {t.slack_date(row.created_at)} {who} {what} via {t.escape(row.surface)}{where}: {status}{execution}"
    )


def render_audit(rows: list[ActionRecord], query: AuditQuery, *, has_more: bool, now: datetime) -> SlackMessage:
    del now  # dates render client-side through Slack's date tokens
    if not rows:
        body = "No audit entries match." if query.page == 1 else "No more audit entries."
        return SlackMessage(text=body, blocks=[section(body)])
    lines = [_line(row) for row in rows]
    blocks = [section(f"*Audit* — page {query.page}, newest first")]
    chunk: list[str] = []
    for line in lines:  # several rows per section, within the section text limit
        if sum(len(c) + 1 for c in chunk) + len(line) > 2800:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if has_more:
        blocks.append(context(f"More: `/codestream audit {t.escape(query.args())} --page {query.page + 1}`"))
    return SlackMessage(text=fallback_text(f"Audit: {len(rows)} entries"), blocks=cap_blocks(blocks))


#: One audit row as a line (the App Home lists the person's own recent actions with it).
audit_line = _line
