"""Pure text helpers for Slack messages: escaping, truncation, links, mentions, dates, durations.

Every value that comes from Code Stream or from people goes through :func:`escape` (or one of the
helpers built on it) before it is put into a message; the Slack syntax built here (``<url|label>``,
``<@U123>``, ``<!date^...>``) is the only place raw ``<`` and ``>`` appear. :func:`truncate` works on
escaped text and never cuts an entity (``&amp;``) or one of those ``<...>`` tokens in half.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from bot.core.time import aware
from bot.core.time import seconds_between as seconds_between  # re-exported for the renderers

ELLIPSIS: Final = "…"

_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_WHITESPACE: Final = re.compile(r"\s+")
# Longest entity escape() produces is "&amp;" (5 characters).
_MAX_ENTITY: Final = 5
_USER_ID: Final = re.compile(r"^[UWB][A-Z0-9]{2,30}$")
_MENTION: Final = re.compile(
    r"^<(?:@[UWB][A-Z0-9]{2,30}|!subteam\^[A-Z0-9]{2,30}(?:\|@?[\w.\-]{1,80})?|!here|!channel)>$"
)
_URL: Final = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$", re.IGNORECASE)
_URL_UNSAFE: Final = str.maketrans({"<": "%3C", ">": "%3E", "|": "%7C", '"': "%22"})
_LINK: Final = re.compile(r"<(?:https?://[^|<>]*)\|([^<>]*)>")
# A link longer than this is shown as its label only: it cannot be truncated without breaking it.
MAX_LINK_URL: Final = 1000


def escape(value: str) -> str:
    """Escape Slack's three control characters (``&``, ``<``, ``>``) as HTML entities."""
    return value.translate(_ESCAPES)


def one_line(value: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return _WHITESPACE.sub(" ", value).strip()


def first_line(value: str) -> str:
    """The first non-blank line (a commit's "subject"), whitespace collapsed."""
    for line in value.splitlines():
        if line.strip():
            return one_line(line)
    return ""


def truncate(text: str, limit: int) -> str:
    """Shorten already-escaped mrkdwn to at most ``limit`` characters, ending with an ellipsis.

    The cut never lands inside an entity (``&amp;``) nor inside a ``<...>`` token (link, mention,
    date): escaped text has no raw ``<``, so every ``<`` starts a token this module built.
    """
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    amp = cut.rfind("&")
    if amp != -1 and amp >= len(cut) - _MAX_ENTITY and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut.rstrip() + ELLIPSIS


def clip(value: str | None, limit: int, *, default: str = "") -> str:
    """A one-line value from outside: whitespace collapsed, escaped, truncated."""
    if value is None or not value.strip():
        return default
    return truncate(escape(one_line(value)), limit)


def clip_subject(value: str | None, limit: int, *, default: str = "") -> str:
    """The first line of a commit message, escaped and truncated."""
    if value is None or not value.strip():
        return default
    return truncate(escape(first_line(value)), limit)


def clip_block(value: str | None, limit: int, *, max_lines: int = 12) -> str:
    """Multi-line text from outside (Code Stream's messages), escaped, at most ``max_lines``
    non-blank lines, truncated. Lines keep their text; runs of spaces are collapsed."""
    if value is None:
        return ""
    lines = [one_line(line) for line in value.splitlines() if line.strip()]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], ELLIPSIS]
    return truncate(escape("\n".join(lines)), limit)


def quote(escaped: str) -> str:
    """Prefix every line of already-escaped text with Slack's block-quote marker."""
    return "\n".join(f">{line}" for line in escaped.splitlines())


def code(value: str | None, limit: int, *, default: str = "") -> str:
    """An inline code span of an outside value (a backtick inside would end the span early)."""
    clipped = clip(value, limit)
    if not clipped:
        return default
    return f"`{clipped.replace('`', 'ˋ')}`"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit to go inside ``<url|label>`` (or a button), else None."""
    if url is None:
        return None
    url = url.strip()
    if len(url) > MAX_LINK_URL or not _URL.match(url):
        return None
    return url.translate(_URL_UNSAFE)


def link_label(label: str) -> str:
    """An outside value as a link label: ``|`` and ``>`` would end the label early."""
    return escape(one_line(label.replace("|", " ").replace(">", " ").replace("<", " ")))


def link(url: str | None, label: str, *, limit: int = 200) -> str:
    """``<url|label>`` when the URL is usable, else just the escaped label. ``label`` is raw."""
    text = truncate(link_label(label), limit) or "link"
    safe = safe_url(url)
    if safe is None:
        return text
    return f"<{escape(safe)}|{text}>"


def strip_links(mrkdwn: str) -> str:
    """``<url|label>`` -> ``label``: links are noise in a notification banner."""
    return _LINK.sub(r"\1", mrkdwn)


def user_mention(user_id: str | None) -> str:
    """``<@U123>`` for a Slack user id; anything else is shown escaped, never as syntax."""
    if user_id is None or not user_id.strip():
        return "someone"
    if _USER_ID.match(user_id.strip()):
        return f"<@{user_id.strip()}>"
    return clip(user_id, 80)


def mention_syntax(mention: str | None) -> str:
    """A configured mention (``<@U123>``, ``<!subteam^S123>``, ``<!here>``) passed through when
    well-formed; a bare user id becomes a mention; anything else is escaped text."""
    if mention is None or not mention.strip():
        return ""
    mention = mention.strip()
    if _MENTION.match(mention):
        return mention
    if _USER_ID.match(mention):
        return f"<@{mention}>"
    return clip(mention, 100)


def slack_date(at: datetime) -> str:
    """Slack's date token: shown in the reader's time zone, with a UTC fallback."""
    moment = aware(at)
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def age(seconds: float) -> str:
    """A coarse elapsed time: ``12 s``, ``5 min``, ``6 h``, ``3 d``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def duration(seconds: float) -> str:
    """A precise run time: ``45s``, ``3m 12s``, ``1h 2m``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
