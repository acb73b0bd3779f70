"""The core's errors (Code Stream's are in ``bot.codestream.errors``; both derive from the one
root, ``bot.errors.CodestreamBotError``).

Each carries a ``user_message`` fit to show in Slack; one error handler maps both families to
messages (``bot.slack.render.messages.render_error``).
"""

from __future__ import annotations

from bot.errors import CodestreamBotError


class BotError(CodestreamBotError):
    """Something the core refuses or cannot do, said to the person who asked."""


class UsageError(BotError):
    """The words did not make a valid command; ``user_message`` says how to write it."""

    default_message = "I did not understand that."


class AccessDenied(BotError):
    default_message = "You are not allowed to do that here."


class StoreUnavailable(BotError):
    default_message = (
        "The bot's database is unavailable, so it cannot record this safely right now: nothing was sent "
        "to Code Stream. Try again in a minute."
    )


class OutcomeUnconfirmed(BotError):
    """An action whose request may have reached Code Stream, and whose outcome could not be
    confirmed by reading the event back before the deadline."""

    default_message = (
        "The bot could not confirm whether it ran (Code Stream could not be read back in time). "
        "Check the event's executions in Code Stream before trying again."
    )


class NotSent(BotError):
    """The intent was claimed, but the bot stopped (or was stopped) before sending anything to
    Code Stream: nothing ran, and the request may be made again."""

    default_message = "The bot stopped before sending it: nothing reached Code Stream. You can try again."


class Superseded(BotError):
    """The failure someone acted on (a digest row, as listed) is not the event's latest run any
    more: it was rerun since, from vRA or elsewhere. Nothing is sent."""

    default_message = (
        "This failure was rerun since it was listed (its latest run is another one): nothing was "
        "sent. Check that run before running it again."
    )
