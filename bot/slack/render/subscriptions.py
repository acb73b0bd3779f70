"""Subscriptions in Slack: what ``subscribe`` and ``unsubscribe`` say in the channel, and the
``/codestream subscriptions`` list (the channel's own routes, and BOT_CONFIG's, read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.core.subscriptions import Overlap, describe
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, context, fallback_text, section
from bot.store import SubscriptionRecord

_MAX_LISTED: Final = 40


def _what(record: SubscriptionRecord) -> str:
    what = t.clip(describe(record), 300)
    if record.mention:
        what += f", mentioning {t.mention_syntax(record.mention)}"
    return what


def render_subscribed(
    record: SubscriptionRecord,
    *,
    actor_id: str,
    shadowed_by: tuple[int, str, str | None] | None = None,
    bot_missing: bool = False,
    overlaps: Sequence[Overlap] = (),
) -> SlackMessage:
    """Said in the channel: everyone sees who routed what here, and where failures that another
    channel's subscription also matches go (one alert each)."""
    line = (
        f"📬 {t.user_mention(actor_id)} subscribed this channel to {_what(record)} "
        f"(*#{record.id}* · `/codestream unsubscribe {record.id}` removes it)"
    )
    blocks = [section(line)]
    if shadowed_by is not None:  # (the rule's index, its match, its channel; None: it drops them)
        index, match, channel = shadowed_by
        target = f"sends them to <#{channel}>" if channel else "drops them"
        blocks.append(
            context(f"⚠️ BOT_CONFIG routes[{index}] ({t.clip(match, 200)}) comes first and {target}: ask an operator.")
        )
    if bot_missing:
        blocks.append(context("⚠️ The bot is not in this channel, so it cannot alert here: `/invite @codestream-bot`."))
    for found in overlaps[:5]:
        blocks.append(context(_overlap_line(found)))
    if len(overlaps) > 5:
        blocks.append(context(f"…and {len(overlaps) - 5} more subscriptions of other channels overlap this one."))
    return SlackMessage(text=fallback_text(line), blocks=blocks)


def _overlap_line(found: Overlap) -> str:
    other = found.other
    theirs = f"<#{other.channel_id}>'s *#{other.id}* ({_what(other)})"
    if not found.other_wins:
        return f"↔️ Overlaps {theirs}: failures both match now come here (this one names more), not there."
    why = "it names more" if found.other_names_more else "it names as much and is older"
    return f"↔️ Overlaps {theirs}: failures both match go there ({why}), not here — one alert per failure."


def render_already_subscribed(record: SubscriptionRecord) -> SlackMessage:
    line = f"This channel already has that subscription: *#{record.id}* {_what(record)}."
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_unsubscribed(record: SubscriptionRecord, *, actor_id: str) -> SlackMessage:
    line = (
        f"📭 {t.user_mention(actor_id)} unsubscribed this channel from {_what(record)} (#{record.id}): "
        "those failures go where the other routes send them"
    )
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_subscriptions(
    records: Sequence[SubscriptionRecord], *, configured: Sequence[str], hidden: int = 0
) -> SlackMessage:
    """The channel's subscriptions (numbered) and, read-only, the lines of BOT_CONFIG's routes
    (and BOT_ALERT_CHANNEL) that send here; ``hidden``: subscriptions the caller may not see."""
    blocks = []
    if records:
        lines = [
            f"*#{r.id}* {_what(r)} · by {t.user_mention(r.created_by)} {t.slack_date(r.created_at)}"
            for r in records[:_MAX_LISTED]
        ]
        blocks.append(section(t.truncate("*This channel's subscriptions:*\n" + "\n".join(lines), 2900)))
    else:
        blocks.append(section("This channel has no subscriptions of its own."))
    if hidden:
        blocks.append(context(f"{hidden} more that the access policy does not let you see."))
    if configured:
        listed = "\n".join(f"• {t.escape(line)}" for line in configured[:_MAX_LISTED])
        blocks.append(section(t.truncate("*Also sent here by the bot's configuration* (read-only):\n" + listed, 2900)))
    blocks.append(
        context(
            "`/codestream subscribe [kind:…] [project:…] [pipeline:…] [repo:…] [branch:…] [mention:@group]` adds one, "
            "`/codestream unsubscribe &lt;n&gt;` removes one. The configuration's routes come first."
        )
    )
    return SlackMessage(text=fallback_text(f"{len(records)} subscriptions"), blocks=blocks)
