"""The Slack-shaped words: a leading @mention, and the replies in an alert's thread that ask for
a verb (``rerun``, ``resume``, ``status``: the verb registry's thread words). Commands are parsed
by the command table; event references by ``bot.core.targets``.

Pure: no Slack calls, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from bot.core.verbs import Verb, by_thread_word

_MENTION: Final = re.compile(r"^\s*<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>[\s:,]*")


def strip_mention(text: str, bot_user_id: str | None = None) -> str:
    """``<@U0BOT> rerun`` -> ``rerun``. With ``bot_user_id`` only the bot's own leading mention
    is stripped: ``<@U0BOB> rerun`` is Carol asking Bob, not the bot."""
    if bot_user_id is None:
        return _MENTION.sub("", text, count=1)
    match = _MENTION.match(text)
    if match is None:
        return text
    return text[match.end() :] if match.group("user") == bot_user_id else text


def parse_thread_reply(text: str, bot_user_id: str | None) -> Verb | None:
    """A reply in an alert's thread: exactly ``rerun``, ``resume`` or ``status`` (any case,
    optionally after the bot's own @mention, surrounding whitespace and a trailing ! or .
    ignored). Anything else — a mention of someone else included — is people talking: None,
    and the bot stays silent."""
    if len(text) > 200:
        return None
    word = strip_mention(text, bot_user_id or "").strip().rstrip("!.").strip().lower()
    spec = by_thread_word(word)
    return spec.name if spec is not None else None
