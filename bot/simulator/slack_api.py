"""A Slack stand-in: a real aiohttp server speaking the Slack Web API wire format.

Tests, the offline demo and benchmarks point `AsyncWebClient(base_url=standin.api_url)` at it
instead of slack.com. It stores messages, threads, ephemerals and `response_url` posts so
they can be asserted on, validates Block Kit like Slack does (`invalid_blocks` with
json-pointer paths), injects faults (429 / 5xx / any error) per method, and answers
`apps.connections.open` with a Socket Mode websocket that says `hello`. `SlackSender`
(re-exported here) plays Slack's side of the requests *to* the bot, signed.

    sl = SlackStandIn()
    await sl.start()
    client = AsyncWebClient(token=sl.bot_token, base_url=sl.api_url)
    ...
    await sl.stop()

Wire format: slack_sdk sends chat.postMessage / chat.update / chat.postEphemeral as a JSON
body (blocks a list, metadata an object), read methods (conversations.*, users.info,
usergroups.*) as GET query strings (booleans as "1"/"0"), and auth.test /
apps.connections.open as POST with query params. Form bodies with `blocks`/`metadata` as
JSON strings are accepted too. The token comes from `Authorization: Bearer` or `token`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from bot.simulator.slack_blocks import validate_blocks
from bot.simulator.slack_methods import SlackWebApi
from bot.simulator.slack_models import JSON, Message, ResponsePost, SlackCall, SlackError, wait_for
from bot.simulator.slack_responses import ResponseUrls
from bot.simulator.slack_sender import SlackSender, sign
from bot.simulator.slack_socket import SocketMode
from bot.simulator.slack_workspace import DEFAULT_BOT_TOKEN

__all__ = [
    "Message",
    "ResponsePost",
    "SlackCall",
    "SlackError",
    "SlackSender",
    "SlackStandIn",
    "sign",
    "validate_blocks",
    "wait_for",
]

# Arguments that arrive as JSON strings in form/query encoding, and the error when they don't parse.
_DECODED_FIELDS = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "metadata": "invalid_metadata_format",
}


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int
    remaining: int | None


class SlackStandIn(SlackWebApi, SocketMode):
    """In-process Slack: Web API, `response_url`s and a Socket Mode websocket on one port."""

    def __init__(
        self,
        bot_token: str = DEFAULT_BOT_TOKEN,
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        *,
        app_id: str = "A0CODESTREAM",
        app_token: str | None = None,
        team_domain: str = "codestream-test",
        seed: bool = True,
    ) -> None:
        super().__init__(bot_token, team_id, bot_user_id, bot_id, app_id=app_id, team_domain=team_domain, seed=seed)
        self.app_token = app_token  # None: any "xapp-" token may open a Socket Mode connection
        self.latency = 0.0  # seconds added to every Web API call (benchmarks)
        self.calls: list[SlackCall] = []
        self.socket_acks = {}
        self.socket_deliveries = []
        self.socket_opened = 0
        self._unacked = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._sockets = []
        self._response_urls = ResponseUrls(self)
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.methods["apps.connections.open"] = self._apps_connections_open

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._response_urls.handle)
        app.router.add_get("/socket", self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        self._response_urls.base_url = self.base_url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackStandIn:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("SlackStandIn is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """The `base_url` for slack_sdk clients (ends with "/api/")."""
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://{self._host}:{self._port}/socket"

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_call(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline
    ) -> list[SlackCall]:
        """Wait until `method` was called at least `count` times; return those calls."""

        def enough() -> list[SlackCall] | None:
            calls = self.calls_to(method)
            return calls if len(calls) >= count else None

        return await wait_for(
            enough, timeout, message=f"{count} call(s) to {method} (calls so far: {[c.method for c in self.calls]})"
        )

    # ------------------------------------------------------------------ response_url

    def new_response_url(
        self,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        *,
        ttl: float | None = None,
    ) -> str:
        """A fresh `response_url` for an interaction in `channel` by `user` (on `message_ts`).

        Posts are recorded in `responses`; in_channel ones become channel messages,
        replace_original / delete_original act on `message_ts`, the rest are ephemerals for
        `user`. At most 5 posts (then 404 `used_url`); 404 `expired_url` after
        `expire_response_url(url)` or `ttl` seconds.
        """
        return self._response_urls.new(channel, user, message_ts, ttl)

    def expire_response_url(self, url: str) -> None:
        self._response_urls.expire(url)

    # ------------------------------------------------------------------ faults

    def fail(
        self,
        method: str,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: int = 1,
        times: int | None = 1,
    ) -> None:
        """Make the next `times` calls to `method` ("*": any method) fail; times=None: until cleared.

        The status defaults to 429 (with a Retry-After header) for "ratelimited", else 200
        like Slack's own errors; a 5xx status answers with that status.
        """
        code = status if status is not None else (429 if error == "ratelimited" else 200)
        self._faults.setdefault(method, []).append(_Fault(error, code, retry_after, times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.pop(0)
                return fault
        return None

    # ------------------------------------------------------------------ HTTP: Web API

    async def _read_args(self, request: web.Request) -> tuple[JSON, str | None, str | None]:
        """Merge query and body arguments; return (args, token, decode error)."""
        args: JSON = dict(request.query)
        auth = request.headers.get("Authorization", "")
        header_token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    return args, header_token or args.pop("token", None), "invalid_json"
                args.update(body)
            else:
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        body_token = args.pop("token", None)
        token = header_token or (str(body_token) if body_token else None)
        for name, error in _DECODED_FIELDS.items():
            value = args.get(name)
            if isinstance(value, str):
                try:
                    args[name] = json.loads(value) if value else None
                except ValueError:
                    return args, token, error
        return args, token, None

    def _token_ok(self, method: str, token: str) -> bool:
        if method == "apps.connections.open":
            return token == self.app_token if self.app_token else token.startswith("xapp-")
        if method.startswith("functions."):  # a workflow step's own token, as Slack requires
            return any(e["token"] == token for e in self.function_executions.values())
        return token == self.bot_token

    def _apps_connections_open(self, args: JSON) -> JSON:
        return {"ok": True, "url": self.socket_url}

    def _call(self, method: str, args: JSON, token: str | None, decode_error: str | None) -> JSON:
        handler = self.methods.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        if not token:
            raise SlackError("not_authed")
        if not self._token_ok(method, token):
            raise SlackError("invalid_auth")
        if decode_error is not None:
            raise SlackError(decode_error)
        return handler(args)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token, decode_error = await self._read_args(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        status, headers = 200, {}
        fault = self._take_fault(method) if method in self.methods else None
        try:
            if fault is not None:
                status = fault.status
                if status == 429:
                    headers["Retry-After"] = str(fault.retry_after)
                raise SlackError(fault.error)
            body = self._call(method, args, token, decode_error)
        except SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        self.calls.append(
            SlackCall(
                method=method,
                args=args,
                at=time.monotonic(),
                http_method=request.method,
                token=token,
                status=status,
                response=body,
            )
        )
        return web.json_response(body, status=status, headers=headers)
