"""Running a pipeline from Slack: ``PipelineRunner.plan`` finds the pipeline and says what is
missing, ``PipelineRunner.run(request) -> RunOutcome`` starts it — the adapter of pipelines to
the one intent lifecycle (``bot.core.lifecycle``). No Slack.

One run per *key*: the form's view, the workflow step's execution, the command's request. The
runner claims ``intent:pipeline:<key>`` with its audit row (kind ``pipeline``, the key in
``event_id``), makes ONE ``POST …/pipelines/{id}/executions`` tagged with the key, and keeps the
claim an hour after it started, so a second submission of the same form or step finds the first
run instead of starting another. The POST has no idempotency key: an ambiguous answer is read
back by listing the pipeline's executions for the tag (``bot.core.run_readback``).

Inputs whose names look secret (password, token, key, secret...) are masked wherever the bot
shows, logs or records them; Code Stream alone gets their values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError, InvalidId, NotFound
from bot.codestream.execution_actions import is_over
from bot.codestream.executions import Execution
from bot.codestream.ids import validate_server_id
from bot.codestream.pipelines import Pipeline
from bot.core.access import AccessPolicy, AllowEveryone, Scope, Viewer
from bot.core.errors import AccessDenied, BotError
from bot.core.intents import INTENT_PREFIX
from bot.core.lifecycle import Closing, Intent, Lifecycle, Run, Sent
from bot.core.logs import request_id as request_id_var
from bot.core.metrics import record_outcome
from bot.core.requests import Actor, Surface, new_request_id
from bot.core.run_inputs import Plan, RunRefused, check_inputs, masked, plan_inputs, scrub
from bot.core.verbs import RUN
from bot.store import ActionRecord

log = logging.getLogger("bot.core.runs")

#: The audit rows' ``kind`` for a pipeline run (``event_id`` holds the run's key).
RUN_KIND: Final = "pipeline"
#: How long a started run's claim is kept: a second submission of its form or step meanwhile
#: is told about the first run.
RUN_DEDUPE_SECONDS: Final = 3600.0
#: A workflow step that waits for its execution gives up after this long.
STEP_MAX_SECONDS: Final = 6 * 3600.0
_PIPELINE_LINK: Final = re.compile(r"pipelines?/([A-Za-z0-9][A-Za-z0-9._~-]{0,127})(?:/[^?#]*)?(?:[?#].*)?$")
_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")

RunStatus: TypeAlias = Literal["started", "failed", "unknown", "not_started", "duplicate", "denied"]


@dataclass(frozen=True)
class RunRequest:
    pipeline_id: str
    inputs: dict[str, str]
    key: str  # one run per key (the form's view id, the workflow step's execution id...)
    actor: Actor
    surface: Surface
    channel_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    team_id: str | None = None


@dataclass(frozen=True)
class Launch:
    """What is acted on: the pipeline, and once started, the execution it made."""

    pipeline: Pipeline
    execution_id: str | None = None
    execution_index: int | None = None


@dataclass(frozen=True)
class RunOutcome:
    request: RunRequest
    status: RunStatus
    pipeline: Pipeline | None = None
    execution_id: str | None = None
    execution_index: int | None = None
    execution_url: str | None = None
    error: CodeStreamError | BotError | None = None
    action_id: int | None = None
    settle_by: datetime | None = None
    prior: ActionRecord | None = None  # duplicate: the first run of this key, as recorded
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    settled_late: bool = False

    @property
    def shown_inputs(self) -> dict[str, str]:
        return masked(self.request.inputs)

    @property
    def pipeline_name(self) -> str:
        return (self.pipeline.name if self.pipeline else None) or "the pipeline"


def run_tag(key: str) -> str:
    """The tag the run carries in Code Stream: how an ambiguous answer is read back."""
    return f"codestream-bot:{key}"


def comments_for(actor: Actor, key: str) -> str:
    """Who asked, for Code Stream's UI, and the run's tag again: a Code Stream that drops
    ``tags`` still lets the read-back find the run by its comments."""
    return f"Run from Slack by {f'@{actor.name}' if actor.name else actor.user_id} ({run_tag(key)})"


def run_detail(pipeline_id: str, inputs: Mapping[str, str]) -> str:
    return json.dumps({"pipeline_id": pipeline_id, "inputs": masked(inputs)}, sort_keys=True)


def detail_of(row: ActionRecord) -> dict[str, Any]:
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


@dataclass
class PipelineTarget:
    """The adapter: what is specific to running a pipeline."""

    client: CodeStreamClient
    lifecycle: Lifecycle

    reread = False  # read just before the claim; nothing a click changes

    def intent(self, request: RunRequest) -> Intent:
        data = {"actor_id": request.actor.user_id, "actor_name": request.actor.name, "verb": RUN.name}
        return Intent(f"{INTENT_PREFIX}{RUN_KIND}:{request.key}", request.request_id, data)

    def row(self, request: RunRequest, status: str, target: Launch | None, error: Exception | None) -> ActionRecord:
        pipeline = target.pipeline if target is not None else None
        return self.lifecycle.row(
            request,
            status,
            error,
            kind=RUN_KIND,
            target_id=request.key,
            action=RUN.name,
            project=pipeline.project if pipeline else None,
            pipeline=pipeline.name if pipeline else None,
            detail=run_detail(request.pipeline_id, request.inputs),
        )

    async def read(self, request: RunRequest) -> Launch:
        return Launch(await self.client.get_pipeline(request.pipeline_id))

    def stale(self, request: RunRequest, target: Launch) -> Closing | None:
        if target.pipeline.runnable:
            return None
        return Closing("failed", not_runnable(target.pipeline))

    async def send(self, request: RunRequest, target: Launch) -> Sent[Launch]:
        result = await self.client.run_pipeline(
            request.pipeline_id,
            inputs=request.inputs,
            comments=comments_for(request.actor, request.key),
            tag=run_tag(request.key),
        )
        after = Launch(target.pipeline, result.execution_id, result.execution_index)
        return Sent(result.state, target, after if result.state == "succeeded" else None, result.error)

    async def refused(self, request: RunRequest, error: CodeStreamError) -> tuple[Launch, Closing] | None:
        return None  # a 4xx on a new run is Code Stream's no; nothing to read back

    def closing(self, request: RunRequest, sent: Sent[Launch]) -> Closing:
        if sent.state == "succeeded" and sent.after is not None:
            return Closing("started", settle_for=RUN_DEDUPE_SECONDS, execution_id=sent.after.execution_id)
        return Closing("not_started", sent.error)


def not_runnable(pipeline: Pipeline) -> RunRefused:
    state = (pipeline.state or "disabled").lower()
    return RunRefused(
        f"{pipeline.name or 'The pipeline'} is {state} in Code Stream: it cannot be run until it is enabled."
    )


@dataclass
class PipelineRunner:
    """Finds pipelines, checks access and inputs, and runs them through the lifecycle."""

    target: PipelineTarget
    execution_url: Callable[[str], str]
    access: AccessPolicy = AllowEveryone()  # noqa: RUF009 - stateless default

    @property
    def client(self) -> CodeStreamClient:
        return self.target.client

    async def plan(self, ref: str, asking: RunRequest, viewer: Viewer, *, project: str | None = None) -> Plan:
        """The pipeline ``ref`` names (a name, an id or a Code Stream link) and what is missing
        of ``asking.inputs``; raises RunRefused, AccessDenied or CodeStreamError. Seeing its
        inputs follows the show rules; the ``run`` access is checked here too, so nobody fills
        in a form in vain, and a denial is audited (as ``asking``)."""
        pipeline = await self._find(ref.strip(), project, viewer)
        scope = Scope(None, pipeline.project, pipeline.name)
        try:
            await self.access.check_action(RUN.access, viewer, scope)
        except AccessDenied as denied:
            await self._refused(replace(asking, pipeline_id=pipeline.pipeline_id or ""), "denied", denied, pipeline)
            raise
        return plan_inputs(pipeline, asking.inputs)

    async def run(self, request: RunRequest) -> RunOutcome:
        token = request_id_var.set(request.request_id)
        started = time.perf_counter()
        try:
            outcome = await self._run(request)
        finally:
            request_id_var.reset(token)
        record_outcome(RUN.name, request.surface, outcome.status)
        log.info(
            "pipeline run %s",
            outcome.status,
            extra={
                "request_id": request.request_id,
                "actor_id": request.actor.user_id,
                "surface": request.surface,
                "channel_id": request.channel_id,
                "pipeline_id": request.pipeline_id,
                "inputs": sorted(masked(request.inputs).items()),
                "result": outcome.status,
                "execution_id": outcome.execution_id,
                "error_class": type(outcome.error).__name__ if outcome.error else None,
                "action_id": outcome.action_id,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            },
        )
        return outcome

    async def follow_unknown(self, outcome: RunOutcome, answer: Any) -> None:
        """The unknown outcome is shown at ``answer`` (a MessageRef): the reconciler reads it back."""
        if outcome.status == "unknown" and outcome.action_id is not None:
            await self.target.lifecycle.hand_over(outcome.action_id, answer)

    async def until_over(
        self, execution_id: str, *, poll_seconds: float, max_seconds: float = STEP_MAX_SECONDS
    ) -> Execution | None:
        """The execution once it ended, read every ``poll_seconds`` on the background pool (a
        workflow step that waits for it); the last read at ``max_seconds``, None if none worked."""
        loop = asyncio.get_running_loop()
        deadline, last = loop.time() + max_seconds, None
        while True:
            try:
                last = await self.client.background.get_execution(execution_id, retry=False)
            except CodeStreamError as exc:
                log.info("execution read failed while waiting", extra={"error_class": type(exc).__name__})
            if (last is not None and is_over(last)) or loop.time() >= deadline:
                return last
            await asyncio.sleep(poll_seconds)

    async def status_now(self, execution_id: str) -> str:
        """The execution's status as Code Stream has it now (``UNKNOWN`` when it cannot say)."""
        try:
            execution = await self.client.background.get_execution(execution_id, retry=False)
        except CodeStreamError:
            return "UNKNOWN"
        return (execution.status or "UNKNOWN").upper()

    async def _run(self, request: RunRequest) -> RunOutcome:
        try:
            pipeline = await self.client.get_pipeline(request.pipeline_id)
        except CodeStreamError as exc:
            return await self._refused(request, "failed", exc, None)
        viewer = Viewer(request.actor.user_id, request.channel_id, request.team_id)
        try:
            await self.access.check_action(RUN.access, viewer, Scope(None, pipeline.project, pipeline.name))
        except AccessDenied as denied:
            return await self._refused(request, "denied", denied, None)
        try:
            check_inputs(pipeline, request.inputs, complete=True)
        except RunRefused as refused:
            return await self._refused(request, "failed", refused, pipeline)
        run = await self.target.lifecycle.run(self.target, request, Launch(pipeline))
        return await self._outcome(request, pipeline, run)

    async def _outcome(self, request: RunRequest, pipeline: Pipeline, run: Run[Launch]) -> RunOutcome:
        error = run.error if isinstance(run.error, CodeStreamError | BotError) else None
        _scrub_error(error, request.inputs)
        if run.state == "lost":
            prior = await self._first_run(request.key)
            action_id = await self.target.lifecycle.audit(self.target.row(request, "duplicate", Launch(pipeline), None))
            outcome = RunOutcome(request, "duplicate", pipeline, action_id=action_id, prior=prior)
            if prior is not None and prior.execution_id:
                return _with_execution(outcome, prior.execution_id, None, self.execution_url)
            return outcome
        if run.state == "succeeded" and run.target is not None and run.target.execution_id:
            launch = run.target
            outcome = RunOutcome(request, "started", pipeline, action_id=run.action_id)
            return _with_execution(outcome, launch.execution_id or "", launch.execution_index, self.execution_url)
        if run.state == "unknown":
            return RunOutcome(
                request, "unknown", pipeline, error=error, action_id=run.action_id, settle_by=run.settle_by
            )
        if run.state == "succeeded":  # accepted, but which execution it made could not be read
            return RunOutcome(request, "started", pipeline, error=error, action_id=run.action_id)
        status: RunStatus = "not_started" if run.state == "not_started" else "failed"
        return RunOutcome(request, status, pipeline, error=error, action_id=run.action_id)

    async def _first_run(self, key: str) -> ActionRecord | None:
        """The row of the run that holds ``key`` (the one that won), if it can be read."""
        try:
            rows = await self.target.lifecycle.store.actions.list(event_id=key, kind=RUN_KIND, limit=200)
        except Exception:
            log.warning("could not read the first run of a key", exc_info=True)
            return None
        # The run that holds the key: one that started (newest first), else one still open.
        started = [row for row in rows if row.execution_id]
        if started:
            return started[0]
        return next((row for row in rows if row.in_flight), None)

    async def _refused(
        self, request: RunRequest, status: RunStatus, error: CodeStreamError | BotError, pipeline: Pipeline | None
    ) -> RunOutcome:
        _scrub_error(error, request.inputs)
        row = self.target.row(request, status, Launch(pipeline) if pipeline else None, error)
        action_id = await self.target.lifecycle.audit(row)
        return RunOutcome(request, status, pipeline if status != "denied" else None, error=error, action_id=action_id)

    async def _find(self, ref: str, project: str | None, viewer: Viewer) -> Pipeline:
        if not ref:
            raise RunRefused("Say which pipeline: `/codestream run <pipeline> [name=value …]`.")
        pipeline_id = _id_in(ref)
        if pipeline_id is not None:
            unknown = RunRefused(f"No pipeline with the id `{pipeline_id}` that you may see.")
            try:
                pipeline = await self.client.get_pipeline(validate_server_id(pipeline_id))
            except (NotFound, InvalidId):
                raise unknown from None
            if not await self.access.may_see(viewer, Scope(None, pipeline.project, pipeline.name)):
                raise unknown
            return pipeline
        found = await self.client.find_pipelines(ref, project=project)
        visible = [p for p in found if await self.access.may_see(viewer, Scope(None, p.project, p.name))]
        where = f" in project {project}" if project else ""
        if not visible:
            raise RunRefused(f"No pipeline named “{ref}”{where} that you may see.")
        if len(visible) > 1:
            projects = ", ".join(sorted({p.project or "?" for p in visible}))
            raise RunRefused(
                f"More than one project has a pipeline named “{ref}” ({projects}): say which with `project:<name>`."
            )
        return visible[0]


def _scrub_error(error: Exception | None, inputs: Mapping[str, str]) -> None:
    """Code Stream may quote a bad value back: never a secret one, wherever the error goes."""
    if isinstance(error, CodeStreamError):
        error.server_message = scrub(error.server_message, inputs)


def _id_in(ref: str) -> str | None:
    """The pipeline id a link or an id names; None for what can only be a name."""
    match = _PIPELINE_LINK.search(ref)
    if match and ("://" in ref or ref.startswith("/")):
        return match.group(1)
    if _UUID.match(ref):
        return ref.lower()
    return None


def _with_execution(
    outcome: RunOutcome, execution_id: str, index: int | None, execution_url: Callable[[str], str]
) -> RunOutcome:
    return replace(outcome, execution_id=execution_id, execution_index=index, execution_url=execution_url(execution_id))
