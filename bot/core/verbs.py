"""The action registry: every action a person can ask of the bot, in one table, whatever it acts
on (``target``: an event, an execution, an approval). Read by the command and thread-reply
parsers, access control, the lifecycle runner and its adapters, the reconciler, the
follow-through, the renderers and the listeners. Adding an action is one entry here, plus, if
it acts on something new, an adapter (``bot.core.lifecycle``) and its Code Stream call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeAlias, TypeVar

from bot.codestream.execution_actions import ExecutionAction
from bot.codestream.models import CodeStreamAction

#: Actions on an event (a git, Gerrit or Docker-registry event).
Verb: TypeAlias = Literal["rerun", "resume", "show"]
#: Actions on an execution.
ControlVerb: TypeAlias = Literal["cancel", "pause", "resume-execution"]
ButtonStyle: TypeAlias = Literal["primary", "danger"] | None
#: What an action acts on; the lifecycle runner has one adapter per target.
Target: TypeAlias = Literal["event", "execution", "approval", "pipeline"]

#: What access rules grant (``actions:`` in BOT_CONFIG): every verb, and the actions that are not
#: verbs on an event — ``mute`` (silence a pipeline's alerts for a while), ``subscribe`` (route
#: failures to a channel, ``/codestream subscribe``), ``cancel`` and ``pause`` (a running
#: execution; ``pause`` also covers resuming it), ``approve`` (approve or reject a Code Stream
#: approval: ``bot.core.approvals``), ``run`` (start a pipeline with inputs: ``bot.core.runs``).
AccessAction: TypeAlias = Literal["show", "rerun", "resume", "mute", "subscribe", "cancel", "pause", "approve", "run"]

_Name = TypeVar("_Name", bound=str)


@dataclass(frozen=True)
class ActionSpec(Generic[_Name]):
    name: _Name
    target: Target
    label: str  # the button and dialog word: "Rerun"
    past: str  # "rerun", "resumed", "canceled": "@alice resumed ..."
    help: str  # one line for /codestream help
    access: AccessAction  # what the policy must grant (rules name it: ``actions: [rerun]``)
    # the ?action= it POSTs (an event's "Rerun", an execution's "cancel"); None: read-only
    codestream_action: str | None = None
    aliases: tuple[str, ...] = ()  # more words that mean it in a command
    thread_words: tuple[str, ...] = ()  # the exact replies in an alert's thread that ask for it
    emoji: str = "🔁"  # shown while it is in progress
    button_style: ButtonStyle = None
    button_action_id: str = ""  # a Block Kit action_id: the message carries its button ("": none)
    reason: str = ""  # execution actions: the reason's first word sent to Code Stream

    @property
    def mutates(self) -> bool:
        return self.codestream_action is not None

    @property
    def action(self) -> ExecutionAction:
        """An execution action's ``?action=`` (``cancel``, ``pause``, ``resume``)."""
        return _EXECUTION_ACTIONS[str(self.codestream_action)]


VerbSpec: TypeAlias = ActionSpec[Verb]
ControlSpec: TypeAlias = ActionSpec[ControlVerb]

_EXECUTION_ACTIONS: Final[dict[str, ExecutionAction]] = {"cancel": "cancel", "pause": "pause", "resume": "resume"}
_EVENT_ACTIONS: Final[dict[str, CodeStreamAction]] = {"Rerun": "Rerun", "Resume": "Resume"}

_EVENT_VERBS: Final[tuple[VerbSpec, ...]] = (
    ActionSpec(
        "rerun",
        "event",
        label="Rerun",
        past="rerun",
        help="start the event's pipeline again, from the beginning",
        access="rerun",
        codestream_action="Rerun",
        aliases=("re-run", "retry"),
        thread_words=("rerun",),
        emoji="🔁",
        button_style="primary",
        button_action_id="codestream_rerun",
    ),
    ActionSpec(
        "resume",
        "event",
        label="Resume",
        past="resumed",
        help="resume the event's failed execution where it stopped",
        access="resume",
        codestream_action="Resume",
        thread_words=("resume",),
        emoji="▶️",
        button_action_id="codestream_resume",
    ),
    ActionSpec(
        "show",
        "event",
        label="Show",
        past="shown",
        help="the event's status, commit and latest execution",
        access="show",
        aliases=("status", "info"),
        thread_words=("status",),
    ),
)

_EXECUTION_VERBS: Final[tuple[ControlSpec, ...]] = (
    ActionSpec(
        "cancel",
        "execution",
        label="Cancel",
        past="canceled",
        help="cancel a running execution (some task types are not told and may keep running)",
        access="cancel",
        codestream_action="cancel",
        reason="Canceled",
        emoji="⛔",
        button_action_id="codestream_cancel_execution",
        button_style="danger",
        aliases=("stop",),
    ),
    ActionSpec(
        "pause",
        "execution",
        label="Pause",
        past="paused",
        help="pause a running execution",
        access="pause",
        codestream_action="pause",
        reason="Paused",
        emoji="⏸",
        button_action_id="codestream_pause_execution",
    ),
    ActionSpec(
        "resume-execution",
        "execution",
        label="Resume execution",
        past="resumed",
        help="resume a paused execution",
        access="pause",
        codestream_action="resume",
        reason="Resumed",
        emoji="▶️",
        button_action_id="codestream_resume_execution",
        button_style="primary",
        aliases=("unpause",),
    ),
)

#: Running a pipeline (``bot.core.runs``): not an action on something that exists, so no button
#: on an alert; the command, the form and the workflow step read it.
RUN: Final[ActionSpec[Literal["run"]]] = ActionSpec(
    "run",
    "pipeline",
    label="Run",
    past="ran",
    help="run a pipeline with its inputs (a form asks for the missing ones)",
    access="run",
    codestream_action="executions",
    emoji="▶️",
)

#: The verbs on an event, by name.
VERBS: Final[dict[Verb, VerbSpec]] = {spec.name: spec for spec in _EVENT_VERBS}
#: The actions on an execution, by name.
CONTROLS: Final[dict[ControlVerb, ControlSpec]] = {spec.name: spec for spec in _EXECUTION_VERBS}

#: Verbs that change something in Code Stream, in the order their buttons appear.
MUTATING: Final[tuple[VerbSpec, ...]] = tuple(spec for spec in VERBS.values() if spec.mutates)
#: The read-only verb every policy evaluates for "may see".
SHOW: Final[Verb] = "show"


def event_action(spec: VerbSpec) -> CodeStreamAction:
    """A mutating event verb's ``?action=`` (``Rerun``, ``Resume``)."""
    return _EVENT_ACTIONS[str(spec.codestream_action)]


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


def control_spec(name: str) -> ControlSpec | None:
    return next((spec for spec in CONTROLS.values() if spec.name == name), None)


def by_control_button(action_id: str) -> ControlSpec | None:
    return next((spec for spec in CONTROLS.values() if spec.button_action_id == action_id), None)


def reason_for(spec: ControlSpec, actor_name: str | None, actor_id: str) -> str:
    """What Code Stream records as an execution action's reason: who asked, from where."""
    who = f"@{actor_name}" if actor_name else actor_id
    return f"{spec.reason} from Slack by {who}"
