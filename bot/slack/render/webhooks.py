"""``/codestream webhooks [project]``: each git webhook the person may see, with its health."""

from __future__ import annotations

from typing import Final

from bot.core.webhook_health import WebhookHealth
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, cap_blocks, context, fallback_text, section

_SHOWN: Final = 40  # webhooks listed (a section each, within a message's 50 blocks)


def _line(health: WebhookHealth) -> str:
    hook = health.webhook
    where = " · ".join(t.clip(part, 60, default="?") for part in (hook.project, hook.repo_name, hook.branch_name))
    head = f"*{t.clip(hook.name, 80, default='webhook')}* ({where} → {t.clip(hook.pipeline, 80, default='?')})"
    if health.broken:
        state = f"🔌 *not starting its pipeline* — {health.failures} recent push(es) did not run"
    elif health.last_event is None:
        state = "⚪ no recent push"
    else:
        state = "✅ its last push started the pipeline"
        if health.failures:
            state += f" ({health.failures} earlier push(es) did not run)"
    lines = [head, state]
    if health.last_failure:
        lines.append(f"Last failure: {t.clip(health.last_failure, 300)}")
    if health.saved_days is not None:
        saved = f"Saved {t.age(health.saved_days * 86400)} ago"
        if hook.updated_by:
            saved += f" by {t.clip(hook.updated_by, 80)}"
        if health.may_expire:
            saved += " · ⏳ *token may expire soon* (not saved for a long time)"
        lines.append(saved)
    return "\n".join(lines)


def render_webhooks(found: list[WebhookHealth], *, project: str | None) -> SlackMessage:
    scope = f" in `{t.clip(project, 80)}`" if project else ""
    if not found:
        line = f"No git webhooks{scope} that you may see."
        return SlackMessage(text=fallback_text(line), blocks=[section(line)])
    broken = sum(1 for h in found if h.broken)
    head = f"*Git webhooks{scope}*: {len(found)}, {broken} not starting their pipeline"
    blocks = [section(head), *(section(_line(h)) for h in found[:_SHOWN])]
    if len(found) > _SHOWN:
        blocks.append(context(f"… and {len(found) - _SHOWN} more: name a project to narrow the list."))
    blocks.append(
        context("A webhook stops starting its pipeline when the API token saved in it expires: edit and save it again.")
    )
    return SlackMessage(text=fallback_text(head), blocks=cap_blocks(blocks))
