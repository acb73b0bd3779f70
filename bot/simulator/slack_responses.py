"""`response_url` endpoints of the Slack stand-in.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there. Like Slack, a
response_url takes JSON `{text, blocks, response_type, replace_original, delete_original,
thread_ts}`, accepts at most 5 posts and expires; errors are plain-text bodies
(`used_url`, `expired_url`, `invalid_blocks`, ...) as on hooks.slack.com.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from bot.simulator.slack_models import JSON, Message, ResponsePost, SlackError, truthy
from bot.simulator.slack_workspace import SlackWorkspace

MAX_POSTS = 5


@dataclass
class _ResponseUrl:
    url: str
    channel: str | None
    user: str | None
    message_ts: str | None
    expires_at: float | None
    uses: int = 0
    expired: bool = False


def response_token(url: str) -> str:
    """The token part of a stand-in `response_url`."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


class ResponseUrls:
    def __init__(self, workspace: SlackWorkspace) -> None:
        self.workspace = workspace
        self.base_url = ""  # set by the server once it listens
        self._urls: dict[str, _ResponseUrl] = {}

    def new(self, channel: str | None, user: str | None, message_ts: str | None, ttl: float | None) -> str:
        if not self.base_url:
            raise RuntimeError("SlackStandIn is not started")
        token = secrets.token_urlsafe(12)
        url = f"{self.base_url}/response/{token}"
        expires = time.monotonic() + ttl if ttl is not None else None
        self._urls[token] = _ResponseUrl(url, channel, user, message_ts, expires)
        return url

    def expire(self, url: str) -> None:
        entry = self._urls.get(response_token(url))
        if entry is None:
            raise KeyError(f"not a response_url of this stand-in: {url}")
        entry.expired = True

    def _reject(self, url: str, status: int, error: str, details: list[str] | None = None) -> web.Response:
        self.workspace.response_errors.append((url, error, details or []))
        return web.Response(status=status, text=error, content_type="text/plain")

    async def handle(self, request: web.Request) -> web.Response:
        entry = self._urls.get(request.match_info["token"])
        if entry is None:
            return self._reject(str(request.url), 404, "no_service")
        if entry.expired or (entry.expires_at is not None and time.monotonic() > entry.expires_at):
            return self._reject(entry.url, 404, "expired_url")
        if entry.uses >= MAX_POSTS:
            return self._reject(entry.url, 404, "used_url")
        try:
            if request.content_type == "application/json":
                body = await request.json()
            else:  # form-encoded `payload=<json>` as incoming webhooks also accept
                body = json.loads(str((await request.post()).get("payload") or ""))
        except ValueError:
            return self._reject(entry.url, 400, "invalid_payload")
        if not isinstance(body, dict):
            return self._reject(entry.url, 400, "invalid_payload")
        if isinstance(body.get("blocks"), str):
            try:
                body["blocks"] = json.loads(body["blocks"])
            except ValueError:
                return self._reject(entry.url, 400, "invalid_blocks_format")
        try:
            action, msg = self._apply(entry, body)
        except SlackError as e:
            return self._reject(entry.url, 400, e.error, list(e.extra.get("errors", [])))
        entry.uses += 1
        self.workspace.responses.append(
            ResponsePost(
                url=entry.url,
                body=body,
                at=time.monotonic(),
                channel=entry.channel,
                user=entry.user,
                message_ts=entry.message_ts,
                action=action,
                message=msg,
            )
        )
        return web.json_response({"ok": True})

    def _apply(self, entry: _ResponseUrl, body: JSON) -> tuple[str, Message | None]:
        ws = self.workspace
        original = ws.message(entry.channel, entry.message_ts) if entry.channel and entry.message_ts else None
        if truthy(body.get("delete_original")):
            if original is None or original.deleted:
                raise SlackError("message_not_found")
            original.deleted = True
            return "deleted", original
        ws.check_content(body)
        if entry.channel is None:
            raise SlackError("channel_not_found")
        if truthy(body.get("replace_original")) and original is not None and not original.deleted:
            ws.edit(original, {"text": body.get("text") or "", "blocks": body.get("blocks") or []})
            return "replaced", original
        thread_ts = ws.thread_root(entry.channel, body.get("thread_ts") or None)
        if body.get("response_type") == "in_channel":
            msg = ws.bot_message(entry.channel, body, thread_ts=thread_ts)
            ws.store(msg)
            return "in_channel", msg
        msg = ws.bot_message(entry.channel, body, thread_ts=thread_ts, ephemeral_for=entry.user)
        ws.ephemerals.append(msg)
        return "ephemeral", msg
