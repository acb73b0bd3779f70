"""The command line: `codestream-bot` and `python -m bot`."""

from bot.cli.main import main

__all__ = ["main"]
