"""Simulated pipelines: their inputs (defaults and ``_inputMeta``), running one
(``POST /pipelines/{id}/executions`` with an ``ExecutionRequest``: an execution that progresses
like every other, carrying the request's input, tags and comments) and the list of a
pipeline's executions. A disabled pipeline is refused with 400, as Code Stream does."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.simulator.cs_events import API_PREFIX, format_ts, now_micros
from bot.simulator.cs_execution_state import ExecutionState
from bot.simulator.cs_middleware import json_error
from bot.simulator.cs_odata import ODataError, compile_filter, page_of, parse_orderby, sort_docs

PIPELINE_FIELDS = frozenset({"id", "name", "project", "enabled", "state"})
EXECUTION_FIELDS = frozenset({"id", "name", "index", "status", "project", "_requestTimeInMicros", "updatedAt"})


class PipelineError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def pipeline_id_for(name: str) -> str:
    """The id every execution of pipeline ``name`` links to (``_pipelineLink``)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"codestream-sim/pipelines/{name}"))


class Pipelines:
    """The pipelines of one simulator; runs become executions of ``executions``."""

    def __init__(self, executions: ExecutionState) -> None:
        self.executions = executions
        self.docs: dict[str, dict[str, Any]] = {}
        self.keep_tags = True  # False: a Code Stream that drops a run request's tags

    def add(self, name: str, **fields: Any) -> dict[str, Any]:
        """A pipeline. Modelled keys: project, enabled, state, inputs (name -> default),
        descriptions (name -> text), mandatory (names), description. Other keys are overlaid."""
        pipeline_id = pipeline_id_for(name)
        inputs = {str(k): v for k, v in dict(fields.pop("inputs", {})).items()}
        descriptions = dict(fields.pop("descriptions", {}))
        mandatory = set(fields.pop("mandatory", ()))
        now = format_ts(now_micros())
        doc: dict[str, Any] = {
            "id": pipeline_id,
            "name": name,
            "description": fields.pop("description", ""),
            "project": fields.pop("project", "Default Project"),
            "enabled": fields.pop("enabled", True),
            "state": fields.pop("state", "ENABLED"),
            "input": inputs,
            "_inputMeta": {
                key: {"description": descriptions.get(key, ""), "mandatory": key in mandatory} for key in inputs
            },
            "output": {},
            "tags": [],
            "stageOrder": ["Build", "Test", "Deploy"],
            "createdAt": now,
            "updatedAt": now,
            "_link": f"{API_PREFIX}/pipelines/{pipeline_id}",
        }
        doc.update(fields)
        self.docs[pipeline_id] = doc
        return copy.deepcopy(doc)

    def get(self, pipeline_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.docs[pipeline_id])

    def listing(self, filter_: str, top: int, skip: int) -> dict[str, Any]:
        docs = list(self.docs.values())
        matches = compile_filter(filter_, PIPELINE_FIELDS)
        if matches is not None:
            docs = [doc for doc in docs if matches(doc)]
        return page_of(docs, top, skip)

    def run(self, pipeline_id: str, body: Any, executed_by: str) -> dict[str, Any]:
        """Start an execution: KeyError for an unknown pipeline, PipelineError for a disabled one
        or a malformed request."""
        doc = self.docs[pipeline_id]
        if not doc.get("enabled", True) or str(doc.get("state", "")).upper() == "DISABLED":
            raise PipelineError(400, f"Pipeline {doc['name']} is not enabled")
        if not isinstance(body, dict):
            raise PipelineError(400, "Malformed JSON body")
        given = body.get("input") or {}
        tags = body.get("tags") or []
        if not isinstance(given, dict) or not isinstance(tags, list):
            raise PipelineError(400, "Invalid execution request")
        inputs = {**doc["input"], **given}
        ex = self.executions._new_execution(doc["name"], doc["project"], None, status=None, executed_by=executed_by)
        ex.input = inputs
        kept = [str(tag) for tag in tags] if self.keep_tags else []
        ex.extra = {"tags": kept, "comments": str(body.get("comments") or "")}
        return {"executionId": ex.id, "executionIndex": ex.index, "executionLink": f"{API_PREFIX}/executions/{ex.id}"}

    def runs(self, pipeline_id: str, filter_: str, orderby: str, top: int, skip: int) -> dict[str, Any]:
        """The pipeline's executions as ``GET /pipelines/{id}/executions`` lists them."""
        doc = self.docs[pipeline_id]
        docs: list[Any] = [
            self.executions.get_execution(ex_id)
            for ex_id, ex in list(self.executions._executions.items())
            if ex.pipeline == doc["name"] and ex.project == doc["project"]
        ]
        matches = compile_filter(filter_, EXECUTION_FIELDS)
        if matches is not None:
            docs = [d for d in docs if matches(d)]
        docs = sort_docs(docs, parse_orderby(orderby or "_requestTimeInMicros desc", EXECUTION_FIELDS))
        return page_of(docs, top, skip)


def seed_pipelines(pipelines: Pipelines) -> None:
    """Two sample pipelines: one with mandatory inputs (and a secret one), one runnable as is."""
    pipelines.add(
        "deploy-api",
        project="Payments",
        description="Deploy the API to an environment.",
        inputs={"env": "staging", "version": "", "dry_run": "false", "registry_token": ""},
        descriptions={
            "env": "Target environment: staging or prod",
            "version": "Image tag to deploy, e.g. 2.4.1",
            "dry_run": "true: render the release without applying it",
            "registry_token": "Token to pull the image (leave empty for the default)",
        },
        mandatory=("env", "version"),
    )
    pipelines.add("nightly-report", project="Payments", inputs={"date": ""}, descriptions={"date": "Day to report"})


def routes(pipelines: Pipelines, subject: Callable[[web.Request], str | None]) -> list[web.RouteDef]:
    """The pipeline endpoints; ``subject`` names the caller (the bearer token's), who runs it."""

    def paging(request: web.Request) -> tuple[str, int, int]:
        q = request.query
        return q.get("$filter", ""), int(q.get("$top") or 25), int(q.get("$skip") or 0)

    async def listing(request: web.Request) -> web.Response:
        try:
            return web.json_response(pipelines.listing(*paging(request)))
        except (ValueError, ODataError):
            return json_error(400, "Invalid query")

    async def get(request: web.Request) -> web.Response:
        pipeline_id = request.match_info["id"]
        try:
            return web.json_response(pipelines.get(pipeline_id))
        except KeyError:
            return json_error(404, f"Pipeline with id {pipeline_id} not found")

    async def run(request: web.Request) -> web.Response:
        pipeline_id = request.match_info["id"]
        try:
            body = json.loads(await request.read() or b"{}")
            return web.json_response(pipelines.run(pipeline_id, body, subject(request) or "unknown"), status=202)
        except ValueError as exc:
            status = exc.status if isinstance(exc, PipelineError) else 400
            return json_error(status, str(exc) if isinstance(exc, PipelineError) else "Malformed JSON body")
        except KeyError:
            return json_error(404, f"Pipeline with id {pipeline_id} not found")

    async def runs(request: web.Request) -> web.Response:
        pipeline_id = request.match_info["id"]
        filter_, top, skip = paging(request)
        try:
            return web.json_response(pipelines.runs(pipeline_id, filter_, request.query.get("$orderby", ""), top, skip))
        except (ValueError, ODataError):
            return json_error(400, "Invalid query")
        except KeyError:
            return json_error(404, f"Pipeline with id {pipeline_id} not found")

    base = f"{API_PREFIX}/pipelines"
    return [
        web.get(base, listing),
        web.get(f"{base}/{{id}}", get),
        web.post(f"{base}/{{id}}/executions", run),
        web.get(f"{base}/{{id}}/executions", runs),
    ]
