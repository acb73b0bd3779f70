"""Running a pipeline: ``/codestream run <pipeline> [name=value …]`` runs it at once when every
mandatory input is given, else opens a form built from its inputs; the form's submission and
the workflow step "Run a Code Stream pipeline" run it. Each is one ``PipelineRunner.run`` with
its own key (one run per command, form or step execution); a started run is posted in the
channel and followed to its end, an unknown one handed to the reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from bot.codestream.errors import CodeStreamError
from bot.core.commands import Invocation
from bot.core.errors import AccessDenied, BotError, UsageError
from bot.core.followup import FollowupTracker
from bot.core.requests import MessageRef
from bot.core.run_inputs import parse_input_lines, parse_run_words
from bot.core.runs import RUN_KIND, PipelineRunner, RunOutcome, RunRequest
from bot.slack.context import InteractionContext, current_request_id
from bot.slack.delivery import Delivery
from bot.slack.interaction import Interaction
from bot.slack.render.base import SlackMessage
from bot.slack.render.messages import render_usage_error
from bot.slack.render.run import parse_run_form, render_run_form, render_run_outcome, render_run_refused

log = logging.getLogger(__name__)

#: A workflow step that waits for its execution polls it this often.
STEP_POLL_SECONDS: Final = 10.0
#: At shutdown, how long finishing a waiting step (one read, one Slack call) may take.
STOP_SECONDS: Final = 5.0

#: Completes a workflow step: (outputs) on success, (error) on failure.
Complete = Callable[[dict[str, Any]], Awaitable[None]]
Fail = Callable[[str], Awaitable[None]]


@dataclass
class PipelineRuns:
    context: InteractionContext
    runner: PipelineRunner
    delivery: Delivery
    followups: FollowupTracker
    step_poll_seconds: float = STEP_POLL_SECONDS
    _waiting: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def from_command(self, interaction: Interaction, invocation: Invocation) -> None:
        """``/codestream run``: at once with every mandatory input, else the form."""
        try:
            ref, project, given = parse_run_words(invocation.args)
        except UsageError as exc:
            await self.context.answer(interaction, render_usage_error(exc))
            return
        viewer = await self.context.viewer(interaction)
        # One run per command: Slack's trigger id names it across redeliveries and replicas.
        key = f"cmd-{interaction.trigger_id}" if interaction.trigger_id else current_request_id()
        asking = await self._request(interaction, "", given, key=key)
        try:
            plan = await self.runner.plan(ref, asking, viewer, project=project)
        except (BotError, CodeStreamError) as exc:
            await self.context.answer(interaction, render_run_refused(exc))
            return
        if not plan.ready:
            view = render_run_form(plan, channel_id=interaction.channel_id, thread_ts=interaction.thread_ts)
            if interaction.trigger_id is None or not await self.delivery.open_view(interaction.trigger_id, view):
                names = " ".join(f"{i.name}=…" for i in plan.missing)
                failed = UsageError(f"Slack did not open the form; give every input instead: `{ref} {names}`.")
                await self.context.answer(interaction, render_usage_error(failed))
            return
        request = replace(asking, pipeline_id=plan.pipeline.pipeline_id or "")
        await self._run(request, interaction, interaction.channel_id, interaction.thread_ts)

    async def from_form(self, view: Mapping[str, Any], interaction: Interaction) -> None:
        """The form's submission: one run per form (its view id is the key), however often it
        is submitted."""
        pipeline_id, channel, thread_ts, inputs = parse_run_form(view)
        key = f"view-{view.get('id') or current_request_id()}"
        request = await self._request(interaction, pipeline_id, inputs, key=key, channel=channel)
        request = replace(request, surface="form")
        await self._run(request, replace(interaction, channel_id=channel, respond=None), channel, thread_ts)

    async def from_workflow(
        self, inputs: Mapping[str, Any], step_id: str, interaction: Interaction, complete: Complete, fail: Fail
    ) -> None:
        """The workflow step: the invoking user's access, one run per step execution (a
        redelivered step finds the first run), completed when it started or, with ``wait``,
        when it ended."""
        try:
            ref, given = str(inputs.get("pipeline") or ""), parse_input_lines(str(inputs.get("inputs") or ""))
            project = str(inputs.get("project") or "").strip() or None
            viewer = await self.context.viewer(interaction)
            asking = await self._request(interaction, "", given, key=f"step-{step_id}")
            asking = replace(asking, surface="workflow", channel_id=None)
            plan = await self.runner.plan(ref, asking, viewer, project=project)
        except (BotError, CodeStreamError) as exc:
            await fail(f"Could not run the pipeline: {exc.user_message}")
            return
        if not plan.ready:
            names = ", ".join(i.name for i in plan.missing)
            await fail(f"{plan.pipeline.name} needs a value for {names} (one name=value per line).")
            return
        outcome = await self.runner.run(replace(asking, pipeline_id=plan.pipeline.pipeline_id or ""))
        if outcome.status == "duplicate" and outcome.execution_id is None:
            # The first delivery of this step is still running it: that one completes the step.
            log.info("workflow step delivered again while its run is in flight", extra={"step": step_id})
            return
        if outcome.execution_id is None or outcome.status not in ("started", "duplicate"):
            if outcome.status == "unknown":
                try:
                    await self.runner.follow_unknown(outcome, None)
                except Exception:
                    log.exception("workflow step: the hand-over to the reconciler failed")
            await fail(_step_error(outcome))
            return
        outputs = {"execution_id": outcome.execution_id, "execution_url": outcome.execution_url or ""}
        if inputs.get("wait") not in (True, "true", "True", 1):
            await complete({**outputs, "status": "STARTED"})
            return
        # Waiting may take hours: in a task of its own, not one of the interactions' slots.
        task = asyncio.create_task(self._complete_when_over(outcome.execution_id, outputs, complete))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _complete_when_over(self, execution_id: str, outputs: dict[str, str], complete: Complete) -> None:
        try:
            ended = await self.runner.until_over(execution_id, poll_seconds=self.step_poll_seconds)
            await complete({**outputs, "status": (ended.status or "UNKNOWN") if ended is not None else "UNKNOWN"})
        except asyncio.CancelledError:
            # The bot stops (a deploy): finish the step with the status so far rather than leave
            # the workflow waiting on a step nobody will complete.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(STOP_SECONDS):
                    await complete({**outputs, "status": await self.runner.status_now(execution_id)})
            raise
        except Exception:
            log.exception("workflow step: waiting for the execution failed", extra={"execution_id": execution_id})

    async def stop_waiting(self) -> None:
        """At shutdown: each step still waiting is completed with its execution's status so far."""
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)

    # --- shared ---------------------------------------------------------------------------------

    async def _request(
        self,
        interaction: Interaction,
        pipeline_id: str,
        inputs: dict[str, str],
        *,
        key: str,
        channel: str | None = None,
    ) -> RunRequest:
        who = await self.context.who(interaction)
        return RunRequest(
            pipeline_id=pipeline_id,
            inputs=inputs,
            key=key,
            channel_id=channel or interaction.channel_id,
            **who.asking(interaction),
        )

    async def _run(
        self, request: RunRequest, interaction: Interaction, channel: str | None, thread_ts: str | None
    ) -> RunOutcome:
        outcome = await self.runner.run(request)
        message = render_run_outcome(outcome, now=datetime.now(UTC))
        if outcome.status not in ("started", "unknown"):
            await self._tell(interaction, channel, message)
            return outcome
        ts = await self.delivery.public(channel, message, thread_ts=thread_ts, respond=interaction.respond)
        summary = MessageRef(channel, ts, ts) if ts and channel else None
        try:
            if outcome.status == "unknown":
                await self.runner.follow_unknown(outcome, summary)
            elif summary is not None and outcome.execution_id:
                await self.followups.track_execution(
                    outcome.execution_id,
                    kind=RUN_KIND,
                    target_id=request.key,
                    action_id=outcome.action_id,
                    summary=summary,
                    actor_id=request.actor.user_id,
                    status="RUNNING",
                )
        except Exception:
            log.exception("after a run: the hand-over failed", extra={"action_id": outcome.action_id})
        return outcome

    async def _tell(self, interaction: Interaction, channel: str | None, message: SlackMessage) -> None:
        await self.delivery.ephemeral(channel, interaction.user_id, message, respond=interaction.respond)


def _step_error(outcome: RunOutcome) -> str:
    if outcome.status == "started":  # accepted, but the execution it made could not be read
        return (
            "Code Stream accepted the run, but its execution could not be read. Check the pipeline's "
            "executions before running this step again."
        )
    if outcome.status == "unknown":
        return (
            "The run was sent but Code Stream's answer was lost; the bot is reading it back. "
            "Check the pipeline's executions before running this step again."
        )
    if isinstance(outcome.error, AccessDenied):
        return f"Not allowed: {outcome.error.user_message}"
    reason = outcome.error.user_message if outcome.error is not None else outcome.status
    return f"The pipeline did not run: {reason}"
