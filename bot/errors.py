"""The one root of the bot's errors. Each layer defines its own under it: Code Stream's
(``bot.codestream.errors``), the store's (``bot.store``), the core's (``bot.core.errors``);
``ConfigError`` lives here. Every one carries a ``user_message`` fit to show a
person (no secrets, no tokens in URLs); the operator gets the class name in the log."""

from __future__ import annotations


class CodestreamBotError(Exception):
    default_message = "Something went wrong."

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


class ConfigError(CodestreamBotError):
    """One or more settings are invalid; ``problems`` holds one readable line each. Raised by
    more than one layer (the settings in ``bot.app``, BOT_CONFIG's rules in ``bot.core``) and
    caught at the edge (``serve``, ``check``), so it lives beside the root."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
