"""The verb registry: every verb the bot knows, in one table, read by the command parser, the
thread-reply parser, access control, perform, the reconciler, the renderers and the listeners.
Adding a verb is one entry here (plus its Code Stream call, if it mutates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from bot.codestream.models import CodeStreamAction

Verb: TypeAlias = Literal["rerun", "resume", "show"]
ButtonStyle: TypeAlias = Literal["primary", "danger"] | None


@dataclass(frozen=True)
class VerbSpec:
    name: Verb
    label: str  # the button and dialog word: "Rerun"
    past: str  # "rerun", "resumed", "shown": "@alice resumed ..."
    help: str  # one line for /codestream help
    aliases: tuple[str, ...] = ()  # more words that mean it in a command
    thread_words: tuple[str, ...] = ()  # the exact replies in an alert's thread that ask for it
    codestream_action: CodeStreamAction | None = None  # the ?action= it POSTs; None: read-only
    emoji: str = "🔁"  # shown on the alert while it is in progress
    button_style: ButtonStyle = None
    button_action_id: str | None = None  # a Block Kit action_id: the alert carries its button
    # The access policy's rules name verbs by ``name`` (``actions: [rerun]``).

    @property
    def mutates(self) -> bool:
        return self.codestream_action is not None


VERBS: Final[dict[Verb, VerbSpec]] = {
    spec.name: spec
    for spec in (
        VerbSpec(
            "rerun",
            label="Rerun",
            past="rerun",
            help="start the event's pipeline again, from the beginning",
            aliases=("re-run", "retry"),
            thread_words=("rerun",),
            codestream_action="Rerun",
            emoji="🔁",
            button_style="primary",
            button_action_id="codestream_rerun",
        ),
        VerbSpec(
            "resume",
            label="Resume",
            past="resumed",
            help="resume the event's failed execution where it stopped",
            thread_words=("resume",),
            codestream_action="Resume",
            emoji="▶️",
            button_action_id="codestream_resume",
        ),
        VerbSpec(
            "show",
            label="Show",
            past="shown",
            help="the event's status, commit and latest execution",
            aliases=("status", "info"),
            thread_words=("status",),
        ),
    )
}

#: What access rules grant (``actions:`` in BOT_CONFIG): every verb, and the actions that are not
#: verbs on an event — ``mute`` (silence a pipeline's alerts for a while), ``subscribe`` (route
#: failures to a channel, ``/codestream subscribe``), ``cancel`` and ``pause`` (a running
#: execution; ``pause`` also covers resuming it: ``bot.core.control``), ``approve`` (approve or
#: reject a Code Stream approval: ``bot.core.approvals``).
AccessAction: TypeAlias = Literal["show", "rerun", "resume", "mute", "subscribe", "cancel", "pause", "approve"]

#: Verbs that change something in Code Stream, in the order their buttons appear.
MUTATING: Final[tuple[VerbSpec, ...]] = tuple(spec for spec in VERBS.values() if spec.mutates)
#: The read-only verb every policy evaluates for "may see".
SHOW: Final[Verb] = "show"


def verb_spec(name: str) -> VerbSpec | None:
    """The verb stored under ``name`` (an audit row's action, a button's), if the bot knows it."""
    return next((spec for spec in VERBS.values() if spec.name == name), None)


def stored_verb(name: str, default: Verb = "rerun") -> Verb:
    """An audit row's action as a Verb; rows written by other releases fall back to ``default``."""
    spec = verb_spec(name)
    return spec.name if spec is not None and spec.mutates else default


def by_button(action_id: str) -> VerbSpec | None:
    return next((spec for spec in MUTATING if spec.button_action_id == action_id), None)


def by_thread_word(word: str) -> VerbSpec | None:
    return next((spec for spec in VERBS.values() if word in spec.thread_words), None)
