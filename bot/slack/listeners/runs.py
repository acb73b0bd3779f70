"""Running a pipeline: the form's submission (``/codestream run`` opens it) and the workflow step
"Run a Code Stream pipeline" (a custom step, callback id ``run_pipeline``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Final

from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.errors import SlackApiError

from bot.slack.interaction import Interaction
from bot.slack.listeners.handlers import Handlers, Listener

log = logging.getLogger(__name__)


async def on_run_form(handlers: Handlers, args: AsyncArgs) -> None:
    """The ack closes the form; the answer comes in the channel it was asked from."""
    interaction = Interaction.from_view_submission(args.body)
    view = args.view or {}

    async def run() -> None:
        await handlers.runs.from_form(view, interaction)

    await handlers.context.start(args.ack, args.request, interaction, run)


async def on_run_step(handlers: Handlers, args: AsyncArgs) -> None:
    """Bolt acked the event; the step is completed (or failed) through Slack's functions API
    with the step's own token, which Bolt gives ``complete`` and ``fail``."""
    event: Mapping[str, Any] = args.event or {}
    inputs = event.get("inputs") if isinstance(event.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    interaction = Interaction.from_workflow_step(args.body, inputs)
    step_id = str(event.get("function_execution_id") or "")

    async def complete(outputs: dict[str, Any]) -> None:
        await finished(args.complete(outputs=outputs))

    async def fail(error: str) -> None:
        await finished(args.fail(error=error))

    async def run() -> None:
        if not interaction.user_id:
            await fail("The step needs to know who runs the workflow: set its “Invoked by” input.")
            return
        if not step_id:  # one run per step execution: without its id there is no "once"
            await fail("Slack sent this step without its execution id: nothing was run.")
            return
        await handlers.runs.from_workflow(inputs, step_id, interaction, complete, fail)

    await handlers.context.start(None, args.request, interaction, run, event_id=args.body.get("event_id"))


async def finished(call: Awaitable[Any]) -> None:
    """A step's completion. A step delivered again finds it completed already: Slack answers
    ``execution_not_in_running_state``, which is the answer we want, not an error."""
    try:
        await call
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error == "execution_not_in_running_state":
            log.info("workflow step already completed", extra={"error": error})
            return
        log.warning("workflow step could not be completed", extra={"error": error})


#: The form's callback id, as render.run draws it.
VIEWS: Final[Mapping[str, Listener]] = {"codestream_run_pipeline": on_run_form}
#: The custom step's callback id, as the manifest declares it.
FUNCTIONS: Final[Mapping[str, Listener]] = {"run_pipeline": on_run_step}
