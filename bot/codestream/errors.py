"""Typed errors of the Code Stream client.

Every error carries a short ``user_message`` that is safe to show in Slack (no secrets, no
URLs with tokens), the HTTP ``status`` when there was a response, and Code Stream's own
``server_message`` when it sent one. The Slack layer maps the class to a rendering; the
operator gets the class name and status in the log.
"""

from __future__ import annotations

from bot.errors import CodestreamBotError


class CodeStreamError(CodestreamBotError):
    """Base class: something went wrong talking to Code Stream."""

    default_message = "Code Stream returned an error."

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.status = status
        self.server_message = server_message
        super().__init__(user_message)

    def __str__(self) -> str:
        parts = [self.user_message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.server_message:
            parts.append(f"Code Stream said: {self.server_message}")
        return " ".join(parts)


class InvalidId(CodeStreamError):
    """The id is not a Code Stream id (a UUID); no request was sent."""

    default_message = "That is not a valid Code Stream id (expected a UUID)."


class NotFound(CodeStreamError):
    default_message = "Code Stream has no such item."


class Forbidden(CodeStreamError):
    default_message = "Code Stream refused: the bot's account may not do this."


class DecisionIgnored(CodeStreamError):
    """Code Stream answered an approval decision but, read back, kept the approval open (or it
    ended otherwise): the bot's account may not decide it, so the decision did not count."""

    default_message = "Code Stream kept the approval open: it did not take the bot's decision; decide in Code Stream."


class AuthenticationFailed(CodeStreamError):
    default_message = "The bot could not authenticate to Code Stream; an operator must fix its token."


class BadRequest(CodeStreamError):
    default_message = "Code Stream rejected the request."


class ServerError(CodeStreamError):
    default_message = "Code Stream had an internal error."


class Unavailable(CodeStreamError):
    """Connection refused, DNS, TLS, timeouts, 502/503/504: try again later."""

    default_message = "Code Stream is unavailable or too slow right now; try again in a minute."


class TLSFailure(Unavailable):
    default_message = "TLS verification of Code Stream's certificate failed."


class RateLimited(CodeStreamError):
    default_message = "Code Stream is rate limiting the bot; try again shortly."

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = 429,
        server_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(user_message, status=status, server_message=server_message)
        self.retry_after = retry_after


class BadResponse(CodeStreamError):
    """The server answered, but not with what the API documents (garbage JSON, HTML...)."""

    default_message = "Code Stream sent a response the bot could not understand."
