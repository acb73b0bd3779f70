"""``/codestream whoami``: what the access policy lets the caller do here, and only elsewhere."""

from __future__ import annotations

from bot.core.access import ALL_ACTIONS, Grant, Grants
from bot.core.verbs import VERBS
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, cap_blocks, context, fallback_text, section

_MAX_LINES = 20  # rules shown; an operator with more reads `codestream-bot check`


# The verbs as help lists them, then every other access action (read from the one list).
_ORDER = (*VERBS, *(action for action in ALL_ACTIONS if action not in VERBS))


def _verbs(actions: tuple[str, ...]) -> str:
    return ", ".join(f"*{action}*" for action in _ORDER if action in actions)


def _scope(grant: Grant) -> str:
    parts = []
    kinds = ", ".join(grant.kinds) if grant.kinds else None
    parts.append(f"{kinds} events" if kinds else "any event")
    if grant.projects:
        parts.append("in projects " + ", ".join(f"`{t.clip(p, 80)}`" for p in grant.projects[:10]))
    if grant.pipelines:
        parts.append("pipelines " + ", ".join(f"`{t.clip(p, 80)}`" for p in grant.pipelines[:10]))
    rule = f" _(rule {grant.rule})_" if grant.rule is not None else ""
    return " ".join(parts) + rule


def render_whoami(grants: Grants, *, user_id: str, channel_id: str | None) -> SlackMessage:
    where = f"<#{channel_id}>" if channel_id else "here"
    who = t.user_mention(user_id)
    if grants.refused is not None:
        line = f"🚫 {t.escape(grants.refused)}"
        return SlackMessage(text=fallback_text(line), blocks=[section(line)])
    if not grants.policy:
        line = (
            f"{who}: no access policy is set, so everyone in this workspace may "
            f"{' / '.join(VERBS)} every event, in every channel."
        )
        return SlackMessage(text=fallback_text(line), blocks=[section(line), context("An operator can set rules.")])
    blocks = []
    if grants.here:
        lines = [f"• {_verbs(g.actions)} — {_scope(g)}" for g in grants.here[:_MAX_LINES]]
        if len(grants.here) > _MAX_LINES:
            lines.append(f"… and {len(grants.here) - _MAX_LINES} more rules (`codestream-bot check` lists them all)")
        head = f"*What {who} may do in {where}:*"
        blocks.append(section(t.truncate(head + "\n" + "\n".join(lines), 2900)))
    elif grants.unchecked_groups:
        blocks.append(section(f"*{who} may do nothing in {where}* as far as the bot can tell right now (see below)."))
    else:
        blocks.append(section(f"*{who} may do nothing in {where}:* no access rule names you for this channel."))
    if grants.elsewhere:
        shown = grants.elsewhere[:_MAX_LINES]
        lines = [f"• in <#{channel}>: {_verbs(grant.actions)} — {_scope(grant)}" for channel, grant in shown]
        blocks.append(section(t.truncate("*Only elsewhere:*\n" + "\n".join(lines), 2900)))
    if grants.unchecked_groups:
        groups = ", ".join(t.escape(g) for g in grants.unchecked_groups)
        note = f"⚠️ Membership of {groups} could not be checked right now; rules naming them are left out."
        blocks.append(context(note))
    blocks.append(context("Rules are numbered as `codestream-bot check` lists them. Show rules decide what you see."))
    text = fallback_text(f"What {who} may do in {where}: {len(grants.here)} rule(s)")
    return SlackMessage(text=text, blocks=cap_blocks(blocks))
