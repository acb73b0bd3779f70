"""The execution-control verbs: Cancel, Pause and Resume execution, on a running execution (not
on an event, so they are not in ``bot.core.verbs.VERBS``: no alert buttons, no thread words).
One entry each drives the slash command, the summary's buttons, the access action, the reason
sent to Code Stream and the words shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from bot.codestream.execution_actions import ExecutionAction
from bot.core.verbs import AccessAction, ButtonStyle

ControlVerb: TypeAlias = Literal["cancel", "pause", "resume-execution"]
#: The audit rows' ``kind`` for an action on an execution (``event_id`` holds the execution id).
EXECUTION_KIND: Final = "execution"


@dataclass(frozen=True)
class ControlSpec:
    name: ControlVerb
    label: str  # the button and dialog word: "Cancel"
    past: str  # "canceled": "@alice canceled ..."
    reason: str  # the reason's first word sent to Code Stream: "Canceled from Slack by @alice"
    help: str  # one line for /codestream help
    access: AccessAction  # what the policy must grant
    action: ExecutionAction  # the ?action= it POSTs
    emoji: str
    button_action_id: str
    button_style: ButtonStyle = None
    aliases: tuple[str, ...] = ()


CONTROLS: Final[dict[ControlVerb, ControlSpec]] = {
    spec.name: spec
    for spec in (
        ControlSpec(
            "cancel",
            label="Cancel",
            past="canceled",
            reason="Canceled",
            help="cancel a running execution (some task types are not told and may keep running)",
            access="cancel",
            action="cancel",
            emoji="⛔",
            button_action_id="codestream_cancel_execution",
            button_style="danger",
            aliases=("stop",),
        ),
        ControlSpec(
            "pause",
            label="Pause",
            past="paused",
            reason="Paused",
            help="pause a running execution",
            access="pause",
            action="pause",
            emoji="⏸",
            button_action_id="codestream_pause_execution",
        ),
        ControlSpec(
            "resume-execution",
            label="Resume execution",
            past="resumed",
            reason="Resumed",
            help="resume a paused execution",
            access="pause",
            action="resume",
            emoji="▶️",
            button_action_id="codestream_resume_execution",
            button_style="primary",
            aliases=("unpause",),
        ),
    )
}


def control_spec(name: str) -> ControlSpec | None:
    return next((spec for spec in CONTROLS.values() if spec.name == name), None)


def by_control_button(action_id: str) -> ControlSpec | None:
    return next((spec for spec in CONTROLS.values() if spec.button_action_id == action_id), None)


def reason_for(spec: ControlSpec, actor_name: str | None, actor_id: str) -> str:
    """What Code Stream records as the reason: who asked, from where."""
    who = f"@{actor_name}" if actor_name else actor_id
    return f"{spec.reason} from Slack by {who}"
