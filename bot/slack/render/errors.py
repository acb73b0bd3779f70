"""How each error class is shown: one table, looked up with ``isinstance`` (most specific first).

Every rendering carries the error's ``user_message``; Code Stream's own message is added only
for the classes where it helps (and never for authentication failures); never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from bot.codestream.errors import (
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    CodeStreamError,
    DecisionIgnored,
    Forbidden,
    InvalidId,
    NotFound,
    RateLimited,
    ServerError,
    TLSFailure,
    Unavailable,
)
from bot.codestream.models import EventKind
from bot.core.control.requests import NotActionable
from bot.core.errors import AccessDenied, BotError, OutcomeUnconfirmed, StoreUnavailable, UsageError
from bot.slack.render import text as t
from bot.slack.render.base import SERVER_MESSAGE_LEN, event_ref

AnyError: TypeAlias = CodeStreamError | BotError


@dataclass(frozen=True)
class ErrorStyle:
    emoji: str
    title: str  # what it means for the person, one sentence; "{target}" names the event
    server_message: bool = False  # show Code Stream's own words
    http_status: bool = False  # show the HTTP status


_UNAVAILABLE: Final = ErrorStyle("🔌", "Code Stream is unavailable or slow; try again in a minute.")
_USAGE: Final = ErrorStyle("🤔", "That did not work as written.")
_FORBIDDEN: Final = ErrorStyle(
    "⛔", "Code Stream refused: the bot's service account may not do this.", server_message=True
)

# Most specific classes first: the first isinstance match wins.
ERROR_STYLES: Final[tuple[tuple[type[Exception], ErrorStyle], ...]] = (
    (NotFound, ErrorStyle("🔍", "Code Stream has no {target}.")),
    (Forbidden, _FORBIDDEN),
    (DecisionIgnored, ErrorStyle("🛂", "Code Stream kept the approval open.", server_message=True)),
    (AuthenticationFailed, ErrorStyle("🔑", "The bot cannot log in to Code Stream; an operator must fix its token.")),
    (TLSFailure, _UNAVAILABLE),
    (Unavailable, _UNAVAILABLE),
    (RateLimited, ErrorStyle("🐢", "Code Stream is rate limiting the bot.")),
    (InvalidId, _USAGE),
    (BadRequest, ErrorStyle("⚠️", "Code Stream rejected the request.", server_message=True, http_status=True)),
    (BadResponse, ErrorStyle("⚠️", "Code Stream sent an answer the bot could not read.", http_status=True)),
    (ServerError, ErrorStyle("💥", "Code Stream had an internal error.", server_message=True, http_status=True)),
    (CodeStreamError, ErrorStyle("⚠️", "Code Stream returned an error.", server_message=True, http_status=True)),
    (UsageError, _USAGE),
    (AccessDenied, ErrorStyle("🚫", "You are not allowed to do that here.")),
    (StoreUnavailable, ErrorStyle("🗄️", "The bot's database is unavailable: nothing was sent to Code Stream.")),
    (OutcomeUnconfirmed, ErrorStyle("⚠️", "Not confirmed either way.")),
    (NotActionable, ErrorStyle("ℹ️", "Not possible in the execution's current status.")),
    (BotError, ErrorStyle("⚠️", "Something went wrong.")),
)
_FALLBACK: Final = ErrorStyle("⚠️", "Something went wrong.")


@dataclass(frozen=True)
class ErrorView:
    """An error ready to show: every string is escaped mrkdwn."""

    emoji: str
    title: str  # what it means, by class
    message: str  # the error's user_message ("" when it only repeats the title)
    details: tuple[str, ...] = ()  # retry-after, Code Stream's words, HTTP status

    @property
    def mrkdwn(self) -> str:
        return "\n".join(p for p in (f"{self.emoji} *{self.title}*", self.message, *self.details) if p)

    @property
    def plain(self) -> str:
        """One line for the notification text."""
        return t.one_line(f"{self.title} {self.message}")


def error_style(error: Exception) -> ErrorStyle:
    for cls, style in ERROR_STYLES:
        if isinstance(error, cls):
            return style
    return _FALLBACK


def _retry_after(error: Exception) -> str:
    if isinstance(error, RateLimited) and error.retry_after is not None and error.retry_after > 0:
        return f"Try again in {t.age(error.retry_after)}."
    return "Try again shortly."


def describe_error(error: AnyError, *, kind: EventKind | None = None, event_id: str | None = None) -> ErrorView:
    """The view of an error: its class's style, its ``user_message`` and the allowed details."""
    style = error_style(error)
    target = event_ref(kind, event_id) if kind is not None else "such item"
    title = t.escape(style.title).replace("{target}", target)
    message = t.clip_block(error.user_message, 1500)
    details: list[str] = []
    if isinstance(error, RateLimited):
        details.append(_retry_after(error))
    if isinstance(error, CodeStreamError):
        if style.server_message and error.server_message and error.server_message.strip():
            said = t.clip_block(error.server_message, SERVER_MESSAGE_LEN, max_lines=5)
            details.append(t.quote(f"Code Stream said: {said}"))
        if style.http_status and error.status is not None:
            details.append(f"(HTTP {int(error.status)})")
    shown = "" if t.one_line(message) == title else message
    return ErrorView(emoji=style.emoji, title=title, message=shown, details=tuple(details))
