"""Mutes in Slack: the alert's overflow menu (mute this pipeline, or this repository's branch, for
an hour, a day, or until it passes again), what a mute says in the alert's thread, and
``/codestream mutes``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from slack_sdk.models.blocks import Option as BlockOption
from slack_sdk.models.blocks import OverflowMenuElement, PlainTextObject

from bot.codestream.models import Event, EventKind, as_kind
from bot.core.errors import UsageError
from bot.core.mutes import DURATIONS, SCOPES, MuteScope, describe, target
from bot.slack.render import text as t
from bot.slack.render.base import SlackMessage, context, fallback_text, section
from bot.slack.render.buttons import event_button_value

ACTION_MUTE: Final = "codestream_mute"
_WHEN: Final = {"1h": "for 1 hour", "1d": "for 1 day", "pass": "until it passes"}
# Slack's overflow menu holds at most five options.
_OPTIONS: Final[tuple[tuple[MuteScope, str], ...]] = (
    ("pipeline", "1h"),
    ("pipeline", "1d"),
    ("pipeline", "pass"),
    ("branch", "1d"),
    ("branch", "pass"),
)


def mute_value(event: Event, scope: MuteScope, duration: str) -> str:
    return f"{event.kind}|{event.id}|{scope}|{duration}"


def parse_mute_value(value: str) -> tuple[EventKind, str, MuteScope, str]:
    parts = value.split("|")
    if len(parts) != 4:
        raise UsageError("That mute option is not one the bot made.")
    kind_text, event_id, scope_text, duration = parts
    kind = as_kind(kind_text)
    scope = next((s for s in SCOPES if s == scope_text), None)
    if kind is None or scope is None or duration not in DURATIONS or not event_id:
        raise UsageError("That mute option is not one the bot made.")
    return kind, event_id.lower(), scope, duration


def mute_menu(event: Event) -> OverflowMenuElement | None:
    """The alert's overflow menu; None when the event names neither pipeline nor branch."""
    if event_button_value(event) is None:  # no valid id: nothing the bot could act on
        return None
    options = []
    for scope, duration in _OPTIONS:
        what = target(event, scope)
        if what is None:
            continue
        label = f"Mute {'pipeline' if scope == 'pipeline' else 'branch'} {_WHEN[duration]}"
        options.append(BlockOption(value=mute_value(event, scope, duration), text=PlainTextObject(text=label[:75])))
    if not options:
        return None
    return OverflowMenuElement(action_id=ACTION_MUTE, options=options)


def render_muted(what: str, *, duration: str, actor_id: str, mute_id: int | None) -> SlackMessage:
    """Said in the alert's thread (everyone sees who muted what)."""
    number = f" · `/codestream unmute {mute_id}` ends it" if mute_id is not None else ""
    line = f"🔕 {t.user_mention(actor_id)} muted {t.clip(what, 200)} {_WHEN.get(duration, '')}{number}"
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_unmuted(what: str, *, actor_id: str) -> SlackMessage:
    line = (
        f"🔔 {t.user_mention(actor_id)} unmuted {t.clip(what, 200)}: its next failures are alerted "
        "(those while it was muted were counted, not posted)"
    )
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_mutes(mutes: Sequence[tuple[int, str, datetime | None, str, int]], *, now: datetime) -> SlackMessage:
    """(number, what, until, who, failures not alerted) per active mute."""
    if not mutes:
        line = "🔔 Nothing is muted: every failure is alerted."
        return SlackMessage(text=line, blocks=[section(line)])
    lines = []
    for number, what, until, who, suppressed in mutes[:40]:
        when = f"until {t.slack_date(until)}" if until is not None else "until it passes again (a week at most)"
        quiet = f" · {suppressed} failure{'s' if suppressed != 1 else ''} not alerted" if suppressed else ""
        lines.append(f"*#{number}* {t.clip(what, 150)} · {when} · by {t.user_mention(who)}{quiet}")
    blocks = [
        section(t.truncate("*Muted:*\n" + "\n".join(lines), 2900)),
        context("`/codestream unmute &lt;n&gt;` ends one."),
    ]
    return SlackMessage(text=fallback_text(f"{len(mutes)} muted"), blocks=blocks)


__all__ = ["ACTION_MUTE", "describe", "mute_menu", "parse_mute_value", "render_muted", "render_mutes"]
