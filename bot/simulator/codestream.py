"""A real aiohttp server that speaks the documented Code Stream API (2019-10-17).

Used by the test suite, the offline demo and the benchmarks. It is independent of the
client in bot/codestream: it only speaks JSON over HTTP, so the client is tested against
the wire format, not against itself.

Here: the server, its logins, tokens and endpoints. The middleware in front of them
(recording, faults, the bearer check) is `cs_middleware`; the data is `cs_state`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from bot.simulator.cs_events import API_PREFIX, KIND_BY_SEGMENT
from bot.simulator.cs_faults import Fault, FaultBook
from bot.simulator.cs_middleware import SimMiddleware, json_error
from bot.simulator.cs_odata import ODataError, parse_orderby
from bot.simulator.cs_pipelines import Pipelines, seed_pipelines
from bot.simulator.cs_pipelines import routes as pipeline_routes
from bot.simulator.cs_seed import (
    SAMPLE_FAILED_DOCKER_ID,
    SAMPLE_FAILED_GERRIT_ID,
    SAMPLE_FAILED_GIT_ID,
    SAMPLE_TRIGGER_FAILED_GIT_ID,
    seed_sample_data,
)
from bot.simulator.cs_state import InvalidExecutionAction
from bot.simulator.cs_tokens import TokenBook
from bot.simulator.cs_triggers import Triggers
from bot.simulator.cs_triggers import routes as trigger_routes
from bot.simulator.cs_user_ops import UserOperations, UserOpError
from bot.simulator.cs_webhooks import Webhooks
from bot.simulator.cs_webhooks import routes as webhook_routes

API_VERSION = "2019-10-17"
_SEGMENTS = "|".join(KIND_BY_SEGMENT)


class CodeStreamSimulator(SimMiddleware):
    """In-memory Code Stream (SimState) plus the HTTP server, auth, faults and recording."""

    pipelines: Pipelines

    def __init__(
        self,
        *,
        # Fake credentials of the simulator itself, printed by serve_forever on purpose.
        refresh_token: str = "sim-refresh-token",  # noqa: S107
        api_token: str = "sim-api-token",  # noqa: S107
        csp_accepts_api_token: bool = True,
        token_lifetime: float = 8 * 3600.0,
        execution_duration: float = 2.0,
        final_status: str = "COMPLETED",
        seed: bool = True,
    ) -> None:
        super().__init__(execution_duration=execution_duration, final_status=final_status)
        self.refresh_token = refresh_token
        self.api_token = api_token
        self.csp_accepts_api_token = csp_accepts_api_token
        self.requests = []
        self.base_url: str | None = None
        self._tokens = TokenBook(token_lifetime)
        self._faults = FaultBook()
        self._logins = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._later = set()
        self.user_operations = UserOperations()
        self.pipelines = Pipelines(self)
        self.webhooks = Webhooks(self)
        self.triggers = Triggers()  # Gerrit listeners, Docker registry webhooks
        if seed:
            seed_sample_data(self)
            seed_pipelines(self.pipelines)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = ephemeral) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._front])
        app.router.add_post("/iaas/api/login", self._vra_login)
        app.router.add_post("/csp/gateway/am/api/auth/api-tokens/authorize", self._csp_authorize)
        app.router.add_get(f"{API_PREFIX}/about", self._about)
        app.router.add_get(f"{API_PREFIX}/{{segment:{_SEGMENTS}}}", self._list_events)
        app.router.add_get(f"{API_PREFIX}/{{segment:{_SEGMENTS}}}/{{id}}", self._get_event)
        app.router.add_post(f"{API_PREFIX}/{{segment:{_SEGMENTS}}}/{{id}}", self._act_on_event)
        app.router.add_get(f"{API_PREFIX}/executions/{{id}}", self._get_execution)
        app.router.add_post(f"{API_PREFIX}/executions/{{id}}", self._act_on_execution)
        app.router.add_get(f"{API_PREFIX}/user-operations", self._list_user_operations)
        app.router.add_get(f"{API_PREFIX}/user-operations/{{id}}", self._get_user_operation)
        app.router.add_post(f"{API_PREFIX}/user-operations/{{id}}", self._respond_to_user_operation)
        app.router.add_routes(pipeline_routes(self.pipelines, self._bearer_subject))
        app.router.add_routes(webhook_routes(self.webhooks, self._bearer_subject))
        app.router.add_routes(trigger_routes(self.triggers))
        # A short shutdown timeout: stop() must not wait out a client's keep-alive.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving. Requests stalled by a delay fault are cut off, not waited for."""
        if self._runner is None:
            return
        self._stopping.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> CodeStreamSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- test helpers ----------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        """Add a fault; the first injected matching fault wins. Returns it (see .hits)."""
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (the next API call gets 401)."""
        self._tokens.expire_all()

    @property
    def logins(self) -> int:
        """Successful logins so far (vRA and CSP together)."""
        return self._logins

    def count(self, method: str, path_prefix: str) -> int:
        """Recorded requests with this method ('*' = any) whose path starts with the prefix."""
        m = method.upper()
        return sum(1 for r in self.requests if (m == "*" or r.method == m) and r.path.startswith(path_prefix))

    def reset_requests(self) -> None:
        self.requests.clear()

    # -- tokens ----------------------------------------------------------------------------
    @property
    def token_lifetime(self) -> float:
        """Lifetime in seconds of tokens issued from now on."""
        return self._tokens.lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        self._tokens.lifetime = seconds

    def _issue_token(self, subject: str) -> str:
        self._logins += 1
        return self._tokens.issue(subject)

    def _bearer_subject(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return self._tokens.subject(token.strip()) if scheme.lower() == "bearer" else None

    # -- auth endpoints ----------------------------------------------------------------------
    async def _vra_login(self, request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("refreshToken") != self.refresh_token:
            # Like vRA: a generic message that never echoes what was sent.
            return web.json_response(
                {"message": "Invalid refresh token", "statusCode": 400, "errorCode": 400}, status=400
            )
        return web.json_response({"tokenType": "Bearer", "token": self._issue_token("svc-codestream-bot")})

    async def _csp_authorize(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {**request.query, **{k: str(v) for k, v in form.items()}}
        api_token, refresh_token = params.get("api_token"), params.get("refresh_token")
        if self.csp_accepts_api_token:
            given = api_token if api_token is not None else refresh_token
            if given is None:
                return json_error(400, "Missing api_token parameter")
        else:
            # An older CSP only knows the `refresh_token` form field.
            given = refresh_token
            if given is None:
                return json_error(400, "Missing refresh_token parameter")
        if given != self.api_token:
            return json_error(400, "invalid_grant: Invalid refresh token")
        return web.json_response(
            {
                "access_token": self._issue_token("svc-codestream-bot@example.com"),
                "expires_in": int(self.token_lifetime),
                "token_type": "bearer",
                "scope": "csp:org_member openid",
            }
        )

    # -- Code Stream endpoints ---------------------------------------------------------------
    async def _about(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "latestApiVersion": API_VERSION,
                "supportedApis": [
                    {
                        "apiVersion": API_VERSION,
                        "documentationLink": f"{API_PREFIX}/swagger/swagger-ui.html?urls.primaryName={API_VERSION}",
                        "deprecationPolicy": None,
                    }
                ],
            }
        )

    async def _list_events(self, request: web.Request) -> web.Response:
        kind = KIND_BY_SEGMENT[request.match_info["segment"]]
        q = request.query
        try:
            top = int(q.get("$top") or q.get("$size") or 25)
            skip = int(q.get("$skip") or 0)
            page = int(q.get("page") or 0)
        except ValueError:
            return json_error(400, "Invalid paging parameter")
        if top < 0 or skip < 0 or page < 0:
            return json_error(400, "Invalid paging parameter")
        orderby = q.get("$orderby") or "name desc"  # the spec's default
        try:
            parse_orderby(orderby, kind.fields)
        except ODataError:
            return json_error(400, "Invalid orderby")
        try:
            result = self.list_events(kind.name, q.get("$filter", ""), orderby, top, skip + page * top)
        except ODataError:
            return json_error(400, "Invalid filter")
        return web.json_response(result)

    async def _get_event(self, request: web.Request) -> web.Response:
        kind = KIND_BY_SEGMENT[request.match_info["segment"]]
        event_id = request.match_info["id"]
        try:
            return web.json_response(self.get_event(kind.name, event_id))
        except KeyError:
            return json_error(404, f"{kind.label} with id {event_id} not found")

    async def _act_on_event(self, request: web.Request) -> web.Response:
        kind = KIND_BY_SEGMENT[request.match_info["segment"]]
        event_id = request.match_info["id"]
        executed_by = self._bearer_subject(request) or "unknown"
        try:
            doc = self.act_on_event(kind.name, event_id, request.query.get("action", ""), executed_by)
        except ValueError:
            return json_error(400, "Invalid action")
        except KeyError:
            return json_error(404, f"{kind.label} with id {event_id} not found")
        return web.json_response(doc)

    async def _get_execution(self, request: web.Request) -> web.Response:
        execution_id = request.match_info["id"]
        try:
            return web.json_response(self.get_execution(execution_id))
        except KeyError:
            return json_error(404, f"Execution with id {execution_id} not found")

    async def _act_on_execution(self, request: web.Request) -> web.Response:
        execution_id = request.match_info["id"]
        try:
            raw = await request.read()  # cached by aiohttp (the middleware read it already)
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return json_error(400, "Malformed JSON body")
        reason = body.get("reason") if isinstance(body, dict) else None
        try:
            doc = self.act_on_execution(
                execution_id, request.query.get("action", ""), reason if isinstance(reason, str) else None
            )
        except InvalidExecutionAction as exc:
            return json_error(400, str(exc))
        except KeyError:
            return json_error(404, f"Execution with id {execution_id} not found")
        return web.json_response(doc)

    async def _list_user_operations(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            top, skip = int(q.get("$top") or 25), int(q.get("$skip") or 0)
            return web.json_response(
                self.user_operations.listing(q.get("$filter", ""), q.get("$orderby") or "createdAt desc", top, skip)
            )
        except (ValueError, ODataError):
            return json_error(400, "Invalid query")

    async def _get_user_operation(self, request: web.Request) -> web.Response:
        op_id = request.match_info["id"]
        try:
            return web.json_response(self.user_operations.get(op_id))
        except KeyError:
            return json_error(404, f"User operation with id {op_id} not found")

    async def _respond_to_user_operation(self, request: web.Request) -> web.Response:
        op_id = request.match_info["id"]
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "Malformed JSON body")
        if not isinstance(body, dict):
            return json_error(400, "Malformed JSON body")
        responder = self._bearer_subject(request) or "unknown"
        try:
            doc = self.user_operations.respond(op_id, body.get("status"), body.get("responseMessage"), responder)
        except UserOpError as exc:
            return json_error(exc.status, str(exc))
        except KeyError:
            return json_error(404, f"User operation with id {op_id} not found")
        return web.json_response(doc)


async def serve_forever(host: str = "127.0.0.1", port: int = 8080, *, burst: int = 0, **kwargs: Any) -> None:
    """Run a simulator until cancelled (for `codestream-bot simulator --port 8080`).

    ``burst``: that many git events of as many pipelines fail at start (a storm, see
    ``fail_burst``). kwargs go to CodeStreamSimulator. The credentials printed are the
    simulator's own fake test values, not secrets.
    """
    sim = CodeStreamSimulator(**kwargs)
    if burst > 0:
        sim.fail_burst(burst)
    url = await sim.start(host, port)
    lines = [
        f"Code Stream simulator listening on {url}",
        f"  vRA login:   POST {url}/iaas/api/login  refresh token: {sim.refresh_token}",
        f"  CSP login:   POST {url}/csp/gateway/am/api/auth/api-tokens/authorize  api token: {sim.api_token}",
    ]
    if burst > 0:
        lines.append(f"  storm: {burst} git events of pipelines storm-01.. failed at start")
    if kwargs.get("seed", True):
        lines += [
            f"  failed git event:       {SAMPLE_FAILED_GIT_ID}",
            f"  trigger-failed git:     {SAMPLE_TRIGGER_FAILED_GIT_ID}",
            f"  failed gerrit event:    {SAMPLE_FAILED_GERRIT_ID}",
            f"  failed registry event:  {SAMPLE_FAILED_DOCKER_ID}",
        ]
    print("\n".join(lines), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
