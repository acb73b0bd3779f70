"""The ``/codestream`` command table: one record per command drives parsing, ``help``, usage
errors, the manifest's usage hint and dispatch. To add a command: a record here, its handler
(a module beside this one), its renderer, and a test.
"""

from __future__ import annotations

from typing import Final

from bot.core.commands import (
    Command,
    CommandTable,
    Invocation,
    execution_target,
    free_words,
    optional_kind,
    verb_command,
)
from bot.core.control import CONTROLS, control_spec
from bot.core.targets import EXECUTION_USAGE
from bot.core.verbs import VERBS
from bot.slack.commands.audit import audit_trail
from bot.slack.commands.failures import list_failures
from bot.slack.commands.mutes import end_mute, list_mutes
from bot.slack.commands.subscriptions import list_subscriptions, subscribe, unsubscribe
from bot.slack.commands.whoami import whoami
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_help
from bot.slack.surfaces import Handler, Surfaces

SLASH_COMMAND: Final = "/codestream"


async def perform(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
    await surfaces.perform_verb(interaction, invocation)  # answers where the outcome belongs
    return None


_PERFORM: Final[Handler] = perform


async def control(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage | None:
    """``/codestream cancel|pause|resume-execution <execution id or link>``."""
    spec = control_spec(invocation.command)
    assert spec is not None and invocation.event_id is not None
    await surfaces.control_execution(spec.name, invocation.event_id, interaction)  # answers itself
    return None


_CONTROL: Final[Handler] = control


async def show_help(surfaces: Surfaces | None, interaction: Interaction | None, invocation: Invocation) -> SlackMessage:
    return help_message()


def help_message() -> SlackMessage:
    return render_help([(COMMANDS.line(c), c.help) for c in COMMANDS])


COMMANDS: Final = CommandTable[Handler](
    SLASH_COMMAND,
    [
        *(verb_command(verb, _PERFORM) for verb in VERBS),
        *(
            Command(spec.name, EXECUTION_USAGE, spec.help, _CONTROL, aliases=spec.aliases, arguments=execution_target)
            for spec in CONTROLS.values()
        ),
        Command(
            "list",
            "[git|gerrit|docker]",
            "recent failed events, each with a Rerun button",
            list_failures,
            aliases=("failed", "failures"),
            arguments=optional_kind,
        ),
        Command(
            "audit",
            "[event id|@user] [--since 7d]",
            "who did what, and when",
            audit_trail,
            arguments=free_words,
        ),
        Command("whoami", "", "what the access policy lets you do here", whoami),
        Command("mutes", "", "what is muted (from an alert's ⋯ menu), for how long, by whom", list_mutes),
        Command("unmute", "<n>", "end mute n: its next failures are alerted again", end_mute, arguments=free_words),
        Command(
            "subscribe",
            "[kind:…] [project:…] [pipeline:…] [repo:…] [branch:…] [mention:@group]",
            "alert this channel of the failures that match (after the configured routes)",
            subscribe,
            arguments=free_words,
        ),
        Command("subscriptions", "", "this channel's subscriptions and configured routes", list_subscriptions),
        Command("unsubscribe", "<n>", "remove subscription n of this channel", unsubscribe, arguments=free_words),
        Command("help", "", "this list", show_help, aliases=("?",), arguments=free_words, instant=True),
    ],
)


def parse_command(text: str) -> Invocation:
    """The invocation ``/codestream <text>`` (or an @mention, mention stripped) asks for."""
    return COMMANDS.parse(text)[1]
