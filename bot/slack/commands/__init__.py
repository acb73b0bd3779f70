"""The ``/codestream`` command table: one record per command drives parsing, ``help``, usage
errors, the manifest's usage hint and dispatch. To add a command: a record here (its handler
reaches the handler object that answers it, in ``CommandHandlers``), that handler's method (a
module beside this one), its renderer, and a test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from bot.core.targets import EXECUTION_USAGE
from bot.core.verbs import CONTROLS, RUN, VERBS
from bot.slack.commands.mutes import Mutes
from bot.slack.commands.reports import Reports
from bot.slack.commands.subscriptions import Subscriptions
from bot.slack.handlers.event_actions import EventActions
from bot.slack.handlers.execution_control import ExecutionControls
from bot.slack.handlers.pipeline_runs import PipelineRuns
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_help

SLASH_COMMAND: Final = "/codestream"


@dataclass(frozen=True)
class CommandHandlers:
    """The handlers the commands' records reach."""

    actions: EventActions
    controls: ExecutionControls
    reports: Reports
    mutes: Mutes
    subscriptions: Subscriptions
    runs: PipelineRuns


#: What answers a command: answers itself (None) or returns the message only the caller sees.
Answer = Callable[[Interaction, Invocation], Awaitable[SlackMessage | None]]
#: A record's handler: which of the handlers answers it.
Handler = Callable[[CommandHandlers], Answer]


async def show_help(interaction: Interaction, invocation: Invocation) -> SlackMessage:
    return help_message()


def help_message() -> SlackMessage:
    return render_help([(COMMANDS.line(c), c.help) for c in COMMANDS])


COMMANDS: Final = CommandTable[Handler](
    SLASH_COMMAND,
    [
        *(verb_command(verb, lambda h: h.actions.from_command) for verb in VERBS),  # answers where the outcome belongs
        *(
            Command(
                spec.name,
                EXECUTION_USAGE,
                spec.help,
                lambda h: h.controls.from_command,  # answers itself
                aliases=spec.aliases,
                arguments=execution_target,
            )
            for spec in CONTROLS.values()
        ),
        Command(
            RUN.name,
            "<pipeline> [project:<name>] [name=value …]",
            RUN.help,
            lambda h: h.runs.from_command,  # answers itself
            arguments=free_words,
            opens_form=True,
        ),
        Command(
            "list",
            "[git|gerrit|docker]",
            "recent failed events, each with a Rerun button",
            lambda h: h.reports.failures_list,
            aliases=("failed", "failures"),
            arguments=optional_kind,
        ),
        Command(
            "audit",
            "[event id|@user] [--since 7d]",
            "who did what, and when",
            lambda h: h.reports.audit,
            arguments=free_words,
        ),
        Command("whoami", "", "what the access policy lets you do here", lambda h: h.reports.whoami),
        Command(
            "webhooks",
            "[project]",
            "the git webhooks and whether each still starts its pipeline",
            lambda h: h.reports.webhook_health,
            arguments=free_words,
        ),
        Command("mutes", "", "what is muted (from an alert's ⋯ menu), for how long, by whom", lambda h: h.mutes.show),
        Command(
            "unmute",
            "<n>",
            "end mute n: its next failures are alerted again",
            lambda h: h.mutes.end,
            arguments=free_words,
        ),
        Command(
            "subscribe",
            "[kind:…] [project:…] [pipeline:…] [repo:…] [branch:…] [mention:@group]",
            "alert this channel of the failures that match (after the configured routes)",
            lambda h: h.subscriptions.subscribe,
            arguments=free_words,
        ),
        Command(
            "subscriptions", "", "this channel's subscriptions and configured routes", lambda h: h.subscriptions.show
        ),
        Command(
            "unsubscribe",
            "<n>",
            "remove subscription n of this channel",
            lambda h: h.subscriptions.end,
            arguments=free_words,
        ),
        Command("help", "", "this list", lambda h: show_help, aliases=("?",), arguments=free_words, instant=True),
    ],
)


def parse_command(text: str) -> Invocation:
    """The invocation ``/codestream <text>`` (or an @mention, mention stripped) asks for."""
    return COMMANDS.parse(text)[1]
