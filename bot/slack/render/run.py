"""Running a pipeline in Slack: the form built from its inputs (and reading it back), the answer
to a run, and the summary the follow-through keeps up to date ("▶️ @alice ran *deploy-api* #14
(env=prod, version=2.4.1)", with Cancel / Pause while it runs). Pure; secret inputs are masked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from bot.codestream.errors import CodeStreamError
from bot.codestream.executions import Execution
from bot.core.errors import BotError, UsageError
from bot.core.run_inputs import Plan, is_secret, masked
from bot.core.runs import RunOutcome
from bot.slack.render import text as t
from bot.slack.render.base import (
    ExecutionRef,
    SlackMessage,
    context,
    execution_link,
    fallback_text,
    section,
    status_text,
)
from bot.slack.render.control import control_buttons
from bot.slack.render.errors import describe_error
from bot.slack.render.messages import status_emoji

RUN_FORM: Final = "codestream_run_pipeline"  # the form's callback id
_INPUT_BLOCK: Final = "input:"
MAX_MODAL_BLOCKS: Final = 100  # Slack's limit for a modal (a message holds 50)
_MAX_FORM_INPUTS: Final = 95  # beside the heading, the description and a note
_MAX_NAME: Final = 200  # longer input names cannot be a block id: not in the form
_INPUTS_SHOWN: Final = 12


# --- the form ------------------------------------------------------------------------------------


def render_run_form(plan: Plan, *, channel_id: str | None, thread_ts: str | None) -> dict[str, Any]:
    """A modal with one field per input: its description as the hint, its default (or the value
    given in the command) filled in, mandatory ones required. Secret inputs are never pre-filled."""
    pipeline = plan.pipeline
    blocks: list[dict[str, Any]] = [
        section(f"Run *{t.clip(pipeline.name, 150)}* in `{t.clip(pipeline.project, 80, default='?')}`"),
    ]
    if pipeline.description:
        blocks.append(context(t.clip(pipeline.description, 500)))
    fields = [i for i in pipeline.inputs() if len(i.name) <= _MAX_NAME]
    if len(fields) > _MAX_FORM_INPUTS:  # the mandatory ones first; the rest as room allows
        fields = sorted(fields, key=lambda i: not i.mandatory)[:_MAX_FORM_INPUTS]
        left_out = len(pipeline.inputs()) - len(fields)
        blocks.append(context(f"{left_out} optional inputs do not fit in a form: give them in the command."))
    for item in fields:
        value = plan.given.get(item.name, item.default)
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value"}
        secret = is_secret(item.name)
        if value and not secret:
            element["initial_value"] = value[:3000]
        # A secret typed in the command is not kept by the bot: it must be typed here again.
        typed_again = secret and item.name in plan.given
        block: dict[str, Any] = {
            "type": "input",
            "block_id": f"{_INPUT_BLOCK}{item.name}",
            "label": {"type": "plain_text", "text": t.truncate(item.name, 2000)},
            "element": element,
            "optional": not (item.mandatory or typed_again),
        }
        hint = item.description
        if typed_again:
            hint = f"{hint} (secret: you gave it in the command; the bot does not keep it, type it again)".strip()
        elif secret:
            hint = f"{hint} (secret: the bot never shows or records it)".strip()
        if hint:
            block["hint"] = {"type": "plain_text", "text": t.truncate(hint, 2000)}
        blocks.append(block)
    if len(blocks) == 1:
        blocks.append(context("This pipeline declares no inputs."))
    metadata = {"p": pipeline.pipeline_id, "c": channel_id, "t": thread_ts}
    return {
        "type": "modal",
        "callback_id": RUN_FORM,
        "title": {"type": "plain_text", "text": "Run pipeline"},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": blocks[:MAX_MODAL_BLOCKS],
    }


def parse_run_form(view: Mapping[str, Any]) -> tuple[str, str | None, str | None, dict[str, str]]:
    """A submitted form: the pipeline id, the channel and thread it was asked from, and the inputs
    filled in (empty ones left to Code Stream's defaults). UsageError for a form not ours."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or ""))
        pipeline_id = metadata["p"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError("That form is not one of mine.") from exc
    if not isinstance(pipeline_id, str) or not pipeline_id:
        raise UsageError("That form is not one of mine.")
    channel, thread = metadata.get("c"), metadata.get("t")
    values = (view.get("state") or {}).get("values") or {}
    inputs: dict[str, str] = {}
    for block_id, actions in values.items() if isinstance(values, dict) else ():
        if not isinstance(block_id, str) or not block_id.startswith(_INPUT_BLOCK) or not isinstance(actions, dict):
            continue
        value = (actions.get("value") or {}).get("value")
        if isinstance(value, str) and value.strip():
            inputs[block_id[len(_INPUT_BLOCK) :]] = value.strip()
    return (
        pipeline_id,
        channel if isinstance(channel, str) else None,
        thread if isinstance(thread, str) else None,
        inputs,
    )


# --- the answer and the summary -------------------------------------------------------------------


def inputs_line(inputs: Mapping[str, Any]) -> str:
    """``(env=prod, version=2.4.1)``, secrets masked, escaped, at most a dozen; empty ones left out."""
    shown = masked({name: value for name, value in inputs.items() if value not in (None, "")})
    if not shown:
        return ""
    parts = [f"{t.clip(name, 40)}={t.clip(value, 60)}" for name, value in list(shown.items())[:_INPUTS_SHOWN]]
    if len(shown) > _INPUTS_SHOWN:
        parts.append(f"… {len(shown) - _INPUTS_SHOWN} more")
    return "(" + ", ".join(parts) + ")"


def _ran(actor_id: str, pipeline: str | None, ref: ExecutionRef, inputs: Mapping[str, Any]) -> str:
    what = execution_link(ref) if ref.known else f"*{t.clip(pipeline, 150, default='the pipeline')}*"
    return f"▶️ {t.user_mention(actor_id)} ran {what} {inputs_line(inputs)}".rstrip()


def render_run_outcome(outcome: RunOutcome, *, now: datetime) -> SlackMessage:
    """What the person (and, once it started or may have, the channel) sees."""
    request, name = outcome.request, outcome.pipeline_name
    ref = ExecutionRef(url=outcome.execution_url, name=name, index=outcome.execution_index, status="RUNNING")
    pipeline = f"*{t.clip(name, 150)}*"
    if outcome.status == "started":
        head = _ran(request.actor.user_id, name, ref, outcome.shown_inputs)
        blocks = [section(head)]
        if outcome.execution_id:
            controls = control_buttons(outcome.execution_id, None, status="RUNNING", pipeline=name, index=ref.index)
            if controls is not None:
                blocks.append(controls)
        else:
            blocks.append(context("Code Stream accepted the run; its execution link could not be read yet."))
        return SlackMessage(text=fallback_text(head), blocks=blocks)
    if outcome.status == "unknown" and outcome.settled_late:
        head = (
            f"⚠️ The bot could not confirm whether {pipeline} ran: Code Stream could not be read back in time. "
            "Check the pipeline's executions in Code Stream before running it again."
        )
        return SlackMessage(text=fallback_text(head), blocks=[section(head)])
    if outcome.status == "not_started" and outcome.settled_late:
        head = (
            f"❌ {pipeline} did *not* start: Code Stream shows no execution of this request after reading "
            "it back until the deadline."
        )
        return SlackMessage(text=fallback_text(head), blocks=[section(head)])
    if outcome.status == "unknown":
        until = f" until {t.slack_date(outcome.settle_by)}" if outcome.settle_by else ""
        head = (
            f"⚠️ The run of {pipeline} was sent to Code Stream, but its answer was lost. The bot is reading "
            f"Code Stream back{until} and will update this message: *do not run it again meanwhile*."
        )
        return SlackMessage(text=fallback_text(head), blocks=[section(head)])
    if outcome.status == "duplicate":
        return _duplicate(outcome)
    if outcome.status == "not_started":
        head = f"❌ {pipeline} was *not started*: nothing reached Code Stream. You can run it again."
        return _with_error(head, outcome.error)
    if outcome.status == "denied":
        return _with_error("🚫 You may not run that pipeline.", outcome.error, error_only=True)
    return _with_error(f"❌ Code Stream did not run {pipeline}.", outcome.error)


def _duplicate(outcome: RunOutcome) -> SlackMessage:
    prior = outcome.prior
    who = t.user_mention(prior.actor_id) if prior is not None else "someone"
    if outcome.execution_url:
        ref = ExecutionRef(url=outcome.execution_url, name=outcome.pipeline_name, index=None, status=None)
        head = f"ℹ️ Already run: {who} started {execution_link(ref)} from this request. Nothing more was sent."
    else:
        head = f"ℹ️ This run was already asked for by {who} and is in progress. Nothing more was sent."
    return SlackMessage(text=fallback_text(head), blocks=[section(head)])


def _with_error(head: str, error: CodeStreamError | BotError | None, *, error_only: bool = False) -> SlackMessage:
    if error is None:
        return SlackMessage(text=fallback_text(head), blocks=[section(head)])
    view = describe_error(error)
    if error_only:
        head = f"🚫 {t.clip_block(error.user_message, 1500)}"
        return SlackMessage(text=fallback_text(head), blocks=[section(head)])
    return SlackMessage(text=fallback_text(head, view.plain), blocks=[section(head), section(view.mrkdwn)])


def render_run_refused(error: CodeStreamError | BotError) -> SlackMessage:
    """The pipeline could not be found, seen or run as asked: nothing was sent."""
    message = t.clip_block(error.user_message, 1500)
    head = f"🤔 {message}" if not isinstance(error, CodeStreamError) else f"❌ {describe_error(error).mrkdwn}"
    return SlackMessage(text=fallback_text(head), blocks=[section(head), context("Nothing was run.")])


def render_run_progress(
    execution: Execution, *, actor_id: str | None, url: str | None, gave_up: bool, acted: str, running: bool
) -> SlackMessage:
    """The summary of a run, as the follow-through reads its execution (the inputs as Code
    Stream has them, secrets masked); Cancel / Pause while it runs."""
    ref = ExecutionRef(url=url, name=_pipeline_name(execution), index=execution.index, status=execution.status)
    head = _ran(actor_id or "someone", ref.name, ref, execution.input)
    status = status_text(execution.status) or "UNKNOWN"
    line = f"{status_emoji(execution.status)} *{status}*"
    if execution.duration_seconds is not None:
        line += f" in {t.duration(execution.duration_seconds)}" if execution.is_terminal else ""
    if gave_up:
        line = f"⌛ Gave up following it — last status {line}; check the execution."
    blocks = [section(f"{head}\n{line}" + (f"\n{acted}" if acted else ""))]
    if running and not gave_up and execution.id:
        controls = control_buttons(execution.id, None, status=execution.status, pipeline=ref.name, index=ref.index)
        if controls:
            blocks.append(controls)
    return SlackMessage(text=fallback_text(head, status), blocks=blocks)


def _pipeline_name(execution: Execution) -> str | None:
    name = execution.name
    if not name:
        return None
    head, sep, tail = name.rpartition("#")
    return head if sep and tail.isdigit() and head else name
