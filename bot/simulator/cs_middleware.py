"""The Code Stream simulator's front: recording, faults, the bearer check, JSON errors.

Part of the Code Stream simulator (`bot.simulator.codestream`); import from `bot.simulator`.
One middleware does the cross-cutting work, in this order: record the request, apply a
matching Fault (before or after the real processing), enforce the bearer token on
/codestream/api/*, and turn routing errors into JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from http import HTTPStatus
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.simulator.cs_events import API_PREFIX, KIND_BY_SEGMENT
from bot.simulator.cs_faults import Fault, FaultBook, Headers, RecordedRequest
from bot.simulator.cs_state import SimState
from bot.simulator.cs_user_ops import UserOperations


class PipelineRuns(Protocol):
    """What the middleware needs of the pipelines (``cs_pipelines.Pipelines``): a late run."""

    def run(self, pipeline_id: str, body: Any, executed_by: str) -> dict[str, Any]: ...


# What a garbage fault answers with: a 200 "JSON" body cut off mid-document.
_GARBAGE = b'{"count": 1, "totalCount": 1, "documents": {"/codestream/api/git-events/'


def json_error(status: int, message: str) -> web.Response:
    """An error answer as Code Stream and CSP give it."""
    return web.json_response({"message": message, "statusCode": status}, status=status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class SimMiddleware(SimState):
    """The middleware half of :class:`~bot.simulator.codestream.CodeStreamSimulator`, whose
    constructor sets these attributes and which says whose token a request carries."""

    requests: list[RecordedRequest]
    _faults: FaultBook
    _stopping: asyncio.Event
    _later: set[asyncio.Task[None]]  # effects applied after their answer
    user_operations: UserOperations
    pipelines: PipelineRuns

    def _bearer_subject(self, request: web.Request) -> str | None:
        raise NotImplementedError

    @web.middleware
    async def _front(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()  # cached by aiohttp: handlers can still read it
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=Headers(request.headers),
                body=body,
                at=time.monotonic(),
            )
        )
        fault = self._faults.take(request.method, request.path)
        if fault is None:
            return await self._process(request, handler)
        if fault.apply_after is not None:
            self._apply_later(request, fault.apply_after, body)
            if await self._stall(fault.delay):
                return self._abort(request)
            return self._faulted(request, fault)
        if fault.after_processing:
            # The real effect happens (e.g. the rerun creates an execution) and only then
            # is the answer lost or mangled: the ambiguous-POST case.
            response = await self._process(request, handler)
            if await self._stall(fault.delay):
                return self._abort(request)
        else:
            if await self._stall(fault.delay):
                return self._abort(request)
            if fault.replaces_response:
                return self._faulted(request, fault)
            response = await self._process(request, handler)
        if fault.replaces_response:
            return self._faulted(request, fault)
        response.headers.update(fault.headers)
        return response

    def _apply_later(self, request: web.Request, delay: float, body: bytes = b"") -> None:
        """The effect of an event or execution action, or of an approval's decision, applied
        ``delay`` seconds from now."""
        segment, event_id = request.match_info.get("segment"), request.match_info.get("id")
        if request.method == "POST" and event_id is not None and "/user-operations/" in request.path:
            self._decide_later(event_id, body, self._bearer_subject(request) or "unknown", delay)
            return
        if request.method == "POST" and event_id is not None and request.path.startswith(f"{API_PREFIX}/pipelines/"):
            self._run_later(event_id, body, self._bearer_subject(request) or "unknown", delay)
            return
        if request.method == "POST" and event_id is not None and request.path.startswith(f"{API_PREFIX}/executions/"):
            self._apply_execution_action_later(event_id, request.query.get("action", ""), delay)
            return
        if request.method != "POST" or segment not in KIND_BY_SEGMENT or event_id is None:
            return
        kind, action = KIND_BY_SEGMENT[segment].name, request.query.get("action", "")
        executed_by = self._bearer_subject(request) or "unknown"

        async def apply() -> None:
            if await self._stall(delay):
                return
            with contextlib.suppress(KeyError, ValueError):
                self.act_on_event(kind, event_id, action, executed_by)

        task = asyncio.create_task(apply())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def _decide_later(self, op_id: str, body: bytes, responder: str, delay: float) -> None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return
        if not isinstance(data, dict):
            return

        async def apply() -> None:
            if await self._stall(delay):
                return
            with contextlib.suppress(KeyError, ValueError):
                self.user_operations.respond(op_id, data.get("status"), data.get("responseMessage"), responder)

        task = asyncio.create_task(apply())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def _run_later(self, pipeline_id: str, body: bytes, executed_by: str, delay: float) -> None:
        async def apply() -> None:
            if await self._stall(delay):
                return
            with contextlib.suppress(KeyError, ValueError):
                self.pipelines.run(pipeline_id, json.loads(body or b"{}"), executed_by)

        task = asyncio.create_task(apply())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def _apply_execution_action_later(self, execution_id: str, action: str, delay: float) -> None:
        async def apply() -> None:
            if await self._stall(delay):
                return
            with contextlib.suppress(KeyError, ValueError):
                self.act_on_execution(execution_id, action, None)

        task = asyncio.create_task(apply())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _process(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(f"{API_PREFIX}/") and self._bearer_subject(request) is None:
            return json_error(401, "Unauthorized")
        try:
            return await handler(request)
        except web.HTTPException as exc:  # router 404 / 405: answer in JSON like the API
            if exc.status < 400:
                raise
            return json_error(exc.status, exc.reason)

    async def _stall(self, delay: float) -> bool:
        """Sleep `delay` seconds; True if the simulator is stopping meanwhile."""
        if delay <= 0:
            return False
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _abort(request: web.Request) -> web.StreamResponse:
        # Drop the TCP connection with no HTTP response at all; the client sees a
        # disconnect (httpx: RemoteProtocolError). aiohttp quietly fails to send the
        # placeholder response below on the closed transport.
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _faulted(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.reset:
            return self._abort(request)
        if fault.garbage:
            headers = {"Content-Type": fault.content_type or "application/json", **fault.headers}
            return web.Response(status=fault.status or 200, body=_GARBAGE, headers=headers)
        status = fault.status or 200
        body = fault.body if fault.body is not None else {"message": _phrase(status), "statusCode": status}
        if isinstance(body, dict):
            data, default_type = json.dumps(body).encode(), "application/json"
        else:
            data = body.encode() if isinstance(body, str) else body
            default_type = "text/plain; charset=utf-8"
        headers = {"Content-Type": fault.content_type or default_type, **fault.headers}
        return web.Response(status=status, body=data, headers=headers)
