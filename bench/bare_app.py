"""The baseline server of the ack benchmarks: a bare Bolt ``AsyncApp`` that only acks.

``python -m bench.bare_app --host 127.0.0.1 --port N``, configured from ``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET`` and ``SLACK_API_URL`` (the Slack stand-in, which answers Bolt's one
``auth.test``). It is served exactly as the bot serves HTTP mode — Starlette, slack_bolt's
``AsyncSlackRequestHandler``, uvicorn with the same options, ``process_before_response=False``
and request verification on — but its listeners (``/codestream`` and the Rerun / Resume
buttons) call ``ack()`` and nothing else. Anything the bot costs beyond this is the bot's own.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.slack.render.buttons import ACTION_RERUN, ACTION_RESUME


def build_bare_app(token: str, signing_secret: str, api_url: str) -> Starlette:
    app = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=signing_secret,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        logger=logging.getLogger("slack_bolt"),
    )

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    app.command("/codestream")(ack_only)
    app.action(ACTION_RERUN)(ack_only)
    app.action(ACTION_RESUME)(ack_only)
    handler = AsyncSlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web = build_bare_app(
        os.environ.pop("SLACK_BOT_TOKEN"),  # popped: Bolt would warn that it ignores it beside a client
        os.environ["SLACK_SIGNING_SECRET"],
        os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    )
    config = uvicorn.Config(web, host=args.host, port=args.port, log_config=None, lifespan="off", access_log=False)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
