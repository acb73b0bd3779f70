"""HTTP mode: Slack posts commands, interactivity and events to ``POST /slack/events``; the
same server answers ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.app.health import Readiness
from bot.app.metrics import exposition
from bot.core.foreground import Foreground
from bot.slack.envelope import malformed
from bot.slack.signature import RequestGate, Verdict

log = logging.getLogger(__name__)

# Slack's largest payloads (a message with 50 blocks in an interaction) are well under this.
MAX_BODY_BYTES: Final = 1_000_000


class BodyLimit:
    """Reject oversized bodies early (413), before Bolt reads or verifies them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited() -> dict[str, object]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise ValueError("request body too large")
            return message  # type: ignore[return-value]

        await self.app(scope, limited, send)


class SlackEvents:
    """``POST /slack/events``: refused while shutting down; with a signing secret, verified,
    checked for replays and for a shape Slack sends before Bolt sees it."""

    def __init__(
        self, app: AsyncApp | None, readiness: Readiness, signing_secret: str | None, foreground: Foreground
    ) -> None:
        self.handler = AsyncSlackRequestHandler(app) if app is not None else None
        verify = self.handler is not None and signing_secret is not None and signing_secret.strip()
        self.gate = RequestGate(signing_secret) if verify and signing_secret is not None else None
        self.readiness = readiness
        self.answering = foreground

    async def handle(self, request: Request) -> Response:
        if self.handler is None:
            return PlainTextResponse("Slack is not configured", status_code=404)
        if self.readiness.shutting_down:
            # Slack retries refused deliveries; another replica (or this one, restarted) takes them.
            return PlainTextResponse("shutting down", status_code=503)
        if self.gate is not None:
            refused = await self._refusal(self.gate, request)
            if refused is not None:
                return refused
        # Counted once verified (an unsigned sender cannot hold the work back) until Bolt has
        # acked: the work after earlier acks waits its turn behind this.
        with self.answering.answering():
            try:
                response: Response = await self.handler.handle(request)
            except Exception as exc:  # noqa: BLE001 - Bolt chokes on some malformed bodies; answer 400, not 500
                log.warning("malformed request to /slack/events", extra={"error_class": type(exc).__name__})
                return PlainTextResponse("malformed request", status_code=400)
        return response

    async def _refusal(self, gate: RequestGate, request: Request) -> Response | None:
        try:
            body = await request.body()
        except ValueError:  # BodyLimit: over the limit while streaming
            return PlainTextResponse("request body too large", status_code=413)
        verdict = gate.check(body, request.headers)
        if verdict is not Verdict.OK:
            # One line, no traceback, and nothing the body asks for is done.
            log.warning("rejected request to /slack/events: %s", verdict.value, extra={"reason": verdict.name})
            return PlainTextResponse("invalid request", status_code=401)
        why = malformed(body, request.headers.get("content-type", ""))
        if why is not None:
            # Signed, but not a shape Slack sends: Bolt's own middleware would raise on it.
            log.warning("malformed request to /slack/events", extra={"reason": why})
            return PlainTextResponse("malformed request", status_code=400)
        return None


def build_web(
    app: AsyncApp | None,
    readiness: Readiness,
    *,
    signing_secret: str | None = None,
    extra_routes: list[Route] | None = None,
    foreground: Foreground | None = None,
) -> Starlette:
    """``app`` is None in Socket Mode (health only). With a signing secret, every request to
    /slack/events is verified and checked for replays before Bolt sees it."""
    slack_events = SlackEvents(app, readiness, signing_secret, foreground or Foreground())

    async def healthz(_: Request) -> Response:
        await asyncio.sleep(0)  # answered only when the event loop is responsive
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        local_only = request.query_params.get("local") in ("1", "true")
        ready, parts = await readiness.report(local_only=local_only)
        return JSONResponse({"ready": ready, **parts}, status_code=200 if ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    routes = [
        Route("/slack/events", slack_events.handle, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *(extra_routes or []),
    ]
    web = Starlette(routes=routes)
    web.add_middleware(BodyLimit)
    return web
