"""Pipelines and running one: ``GET /codestream/api/pipelines`` (``$filter`` by name and
project), ``GET …/pipelines/{id}``, ``POST …/pipelines/{id}/executions`` with an
``ExecutionRequest {comments, input, tags}`` answered by an ``ExecutionResponse {executionId,
executionIndex, executionLink}``, and ``GET …/pipelines/{id}/executions`` to read back a run
whose answer was lost.

The POST carries no idempotency key, so the caller tags the run with the intent's key: after an
ambiguous answer the pipeline's recent executions are listed and the one carrying the tag (in
``tags`` or, for a Code Stream that drops tags, ``comments``) is the run. Which fields
``$filter`` accepts on executions is not documented, so the match is made here, not there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from bot.codestream.errors import CodeStreamError
from bot.codestream.executions import Execution
from bot.codestream.fields import CodeStreamModel, LenientDict, LenientInt, LenientStr, id_from_link
from bot.codestream.ids import validate_server_id
from bot.codestream.pages import DocumentPage
from bot.codestream.retry import read_back
from bot.codestream.session import API, Exchange, Unanswered
from bot.codestream.transport import json_object
from bot.codestream.webhooks import WebhookApi

log = logging.getLogger("bot.codestream")

#: Executions of one pipeline listed per page to find a tagged run (newest first), and at most
#: how many pages: a busy pipeline (many git pushes) may have run often since.
RECENT_RUNS: Final = 50
MAX_RUN_PAGES: Final = 20
CLOCK_MARGIN_SECONDS: Final = 600.0
#: ``comments`` are free text; long ones are cut (Code Stream shows them in its UI).
MAX_COMMENTS: Final = 500


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


@dataclass(frozen=True)
class PipelineInput:
    """One declared input: its default, what ``_inputMeta`` says of it."""

    name: str
    default: str
    description: str
    mandatory: bool


class Pipeline(CodeStreamModel):
    id: LenientStr = None
    name: LenientStr = None
    project: LenientStr = None
    description: LenientStr = None
    enabled: Any = True
    state: LenientStr = None  # "RELEASED", "ENABLED", "DISABLED" (8.10; no enum in the spec)
    input: LenientDict = Field(default_factory=dict)
    input_meta: LenientDict = Field(default_factory=dict, alias="_inputMeta")
    link: LenientStr = Field(None, alias="_link")

    @property
    def pipeline_id(self) -> str | None:
        return self.id or id_from_link(self.link)

    @property
    def runnable(self) -> bool:
        """Enabled, and not marked disabled by ``state`` (a draft has ``enabled: false``)."""
        return _truthy(self.enabled) and (self.state or "").strip().upper() != "DISABLED"

    def inputs(self) -> list[PipelineInput]:
        """The declared inputs, in the order Code Stream lists them. ``mandatory`` is only in the
        spec's example of ``_inputMeta``: absent, an input is optional."""
        found: list[PipelineInput] = []
        for name, default in self.input.items():
            meta = self.input_meta.get(name)
            meta = meta if isinstance(meta, dict) else {}
            description = meta.get("description")
            found.append(
                PipelineInput(
                    name=str(name),
                    default="" if default is None else str(default),
                    description=description if isinstance(description, str) else "",
                    mandatory=_truthy(meta.get("mandatory", False)),
                )
            )
        return found


class ExecutionRequest(BaseModel):
    """The spec's ``ExecutionRequest`` as the bot sends it."""

    model_config = ConfigDict(extra="forbid")

    comments: str
    input: dict[str, str]
    tags: list[str]


class ExecutionResponse(CodeStreamModel):
    execution_id: LenientStr = Field(None, alias="executionId")
    execution_index: LenientInt = Field(None, alias="executionIndex")
    execution_link: LenientStr = Field(None, alias="executionLink")


RunState: TypeAlias = Literal["succeeded", "not_started", "unknown"]


@dataclass(frozen=True)
class RunResult:
    """What the POST did: ``succeeded`` (an execution was created: its id and index as answered
    or read back), ``not_started`` (nothing left: safe to try again), ``unknown`` (it may have
    arrived and no read found the tagged run yet)."""

    state: RunState
    execution_id: str | None = None
    execution_index: int | None = None
    error: CodeStreamError | None = None


def carries(execution: Execution, tag: str) -> bool:
    """Whether ``execution`` is the run tagged ``tag`` (in its tags, or its comments)."""
    return tag in execution.tags or (execution.comments is not None and tag in execution.comments)


class PipelineApi(WebhookApi):
    """The pipeline operations of :class:`~bot.codestream.client.CodeStreamClient`."""

    async def find_pipelines(self, name: str, *, project: str | None = None) -> list[Pipeline]:
        """Pipelines named ``name`` (exactly, as Code Stream compares), in ``project`` if given."""
        clause = f"name eq {_quoted(name)}"
        if project:
            clause += f" and project eq {_quoted(project)}"
        body = await self._get_json(
            "list pipelines",
            Exchange("GET", f"{API}/pipelines", {"$filter": clause, "$top": "20"}),
            what=f"pipeline {name}",
        )
        page = DocumentPage.model_validate(body)
        return [Pipeline.model_validate(doc) for doc in page.ordered_documents()[:20]]

    async def get_pipeline(self, pipeline_id: str) -> Pipeline:
        pipeline_id = validate_server_id(pipeline_id)
        body = await self._get_json(
            "get pipeline", Exchange("GET", f"{API}/pipelines/{pipeline_id}"), what=f"pipeline {pipeline_id}"
        )
        return Pipeline.model_validate(body)

    async def run_pipeline(self, pipeline_id: str, *, inputs: dict[str, str], comments: str, tag: str) -> RunResult:
        """Start one execution, exactly once: the POST is never resent once it may have left. An
        ambiguous answer is followed by a few reads of the pipeline's executions for ``tag``."""
        pipeline_id = validate_server_id(pipeline_id)
        body = ExecutionRequest(comments=comments[:MAX_COMMENTS], input=inputs, tags=[tag]).model_dump()
        exchange = Exchange("POST", f"{API}/pipelines/{pipeline_id}/executions", body=body)
        since = since_micros(time.time())
        response = await self._post_once("run pipeline", exchange, what=f"pipeline {pipeline_id}")
        if isinstance(response, Unanswered):
            if not response.sent:
                return RunResult("not_started", error=response.error)
            log.warning(
                "ambiguous run outcome, reading the pipeline's executions back",
                extra={"pipeline_id": pipeline_id, "error_class": type(response.error).__name__},
            )
            found = await read_back(
                self.retry, lambda: self._find_quietly(pipeline_id, tag, since), lambda run: run is not None
            )
            if found is None:
                return RunResult("unknown", error=response.error)
            return RunResult("succeeded", found.id, found.index, error=response.error)
        try:
            answer = ExecutionResponse.model_validate(json_object(response))
        except CodeStreamError:
            answer = ExecutionResponse()
        execution_id = answer.execution_id or id_from_link(answer.execution_link)
        if execution_id is None:  # accepted (2xx) but unreadable: it ran; find which one
            found = await self._find_quietly(pipeline_id, tag, since)
            return RunResult("succeeded", found.id if found else None, found.index if found else None)
        return RunResult("succeeded", execution_id, answer.execution_index)

    async def find_run(self, pipeline_id: str, tag: str, *, since_micros: int | None = None) -> Execution | None:
        """The pipeline's execution tagged ``tag``, newest first, None when there is none; raises
        CodeStreamError when they cannot be read. Pages back until a short page, or past
        ``since_micros`` (when the run was asked for: older executions cannot be it)."""
        pipeline_id = validate_server_id(pipeline_id)
        for page in range(MAX_RUN_PAGES):
            params = {
                "$top": str(RECENT_RUNS),
                "$skip": str(page * RECENT_RUNS),
                "$orderby": "_requestTimeInMicros desc",
            }
            body = await self._get_json(
                "list pipeline executions",
                Exchange("GET", f"{API}/pipelines/{pipeline_id}/executions", params),
                what=f"pipeline {pipeline_id}",
            )
            docs = DocumentPage.model_validate(body).ordered_documents()[:RECENT_RUNS]
            executions = [Execution.model_validate(doc) for doc in docs]
            found = next((e for e in executions if carries(e, tag)), None)
            if found is not None:
                return found
            oldest = min((e.request_time_micros for e in executions if e.request_time_micros), default=None)
            if len(docs) < RECENT_RUNS or (since_micros is not None and oldest is not None and oldest < since_micros):
                return None
        log.warning("run read-back gave up paging", extra={"pipeline_id": pipeline_id, "pages": MAX_RUN_PAGES})
        return None

    async def _find_quietly(self, pipeline_id: str, tag: str, since: int) -> Execution | None:
        try:
            return await self.find_run(pipeline_id, tag, since_micros=since)
        except CodeStreamError as exc:
            log.warning("run read-back failed", extra={"pipeline_id": pipeline_id, "error_class": type(exc).__name__})
            return None


def since_micros(asked_at: float) -> int:
    """The request time (Code Stream's microseconds) before which no execution can be a run
    asked for at ``asked_at`` (epoch seconds), with ten minutes for the clocks to disagree."""
    return int((asked_at - CLOCK_MARGIN_SECONDS) * 1_000_000)


def _quoted(text: str) -> str:
    """An OData string literal: quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
