"""Slack's side of the requests *to* the bot: slash commands, block actions and Events API
callbacks, encoded and signed exactly as Slack sends them.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there.

Signing: basestring ``v0:{timestamp}:{raw body}``, HMAC-SHA256 keyed with the signing
secret, hex digest, sent as ``X-Slack-Signature: v0=<hex>`` together with
``X-Slack-Request-Timestamp``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import ssl
import time
import uuid
from types import TracebackType
from urllib.parse import urlencode

import httpx

from bot.simulator.slack_models import JSON, Message
from bot.simulator.slack_payloads import (
    action,
    elements,
    event_envelope,
    find_element,
    message_action,
    retry_headers,
    trigger_id,
)
from bot.simulator.slack_workspace import SlackWorkspace

FORM = "application/x-www-form-urlencoded"


def sign(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Slack-Signature` value for `body` sent at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


KEEPALIVE_EXPIRY = 2.0


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every sender of the process (building one reads the CA bundle:
    about 25 ms of CPU, paid per test otherwise)."""
    return httpx.create_ssl_context()


class SlackSender:
    """Sends signed Slack requests to the bot's HTTP endpoint (one shared httpx client)."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        standin: SlackWorkspace,
        team_id: str | None = None,
        *,
        api_app_id: str | None = None,
        verification_token: str = "legacy-verification-token",  # noqa: S107 - fake
        timeout: float = 10.0,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.standin = standin
        self.team_id = team_id or standin.team_id
        self.api_app_id = api_app_id or standin.app_id
        self.verification_token = verification_token
        self.last_response_url: str | None = None
        self.last_payload: JSON | None = None
        # Idle connections are dropped after 2 s, before the bot's server closes them (5 s): a
        # request sent on a connection the server is closing fails with a ReadError.
        self._client = httpx.AsyncClient(
            timeout=timeout, verify=_tls(), limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> SlackSender:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ transport

    async def raw(
        self,
        body: bytes,
        content_type: str,
        timestamp: int | None = None,
        signature: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST `body` as-is; signed for `timestamp` (default now) unless `signature` is given."""
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else sign(self.signing_secret, ts, body),
            **(headers or {}),
        }
        return await self._client.post(self.bot_url, content=body, headers=sent)

    async def _form(self, fields: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.raw(urlencode(fields).encode(), FORM, headers=headers)

    def _user(self, user: str) -> JSON:
        info = self.standin.users.get(user, {})
        name = str(info.get("name", user.lower()))
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def _channel_name(self, channel: str) -> str:
        info = self.standin.channels.get(channel)
        if info is None:
            return channel
        return "directmessage" if info.get("is_im") else str(info["name"])

    # ------------------------------------------------------------------ slash commands

    async def slash_command(
        self,
        text: str,
        user: str = "U0ALICE",
        channel: str = "C0ALERTS",
        command: str = "/codestream",
        *,
        response_url: str | None = None,
    ) -> httpx.Response:
        """A slash command, form-encoded like Slack, with a fresh stand-in response_url."""
        url = response_url or self.standin.new_response_url(channel=channel, user=user)
        self.last_response_url = url
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.standin.team_domain,
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": user,
            "user_name": str(self._user(user)["name"]),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": url,
            "trigger_id": trigger_id(),
        }
        self.last_payload = dict(fields)
        return await self._form(fields)

    # ------------------------------------------------------------------ interactivity

    async def block_action(
        self,
        action_id: str,
        value: str | None = None,
        user: str = "U0ALICE",
        channel: str = "C0ALERTS",
        message_ts: str | None = None,
        message: Message | JSON | None = None,
        *,
        block_id: str | None = None,
        retry: int = 0,
        response_url: str | None = None,
        option: str | None = None,
    ) -> httpx.Response:
        """A button click (`block_actions`) on a message, as `payload=<json>` form field; with
        ``option``, the choice of that value in an overflow menu (``selected_option``).

        The message defaults to the stand-in's copy of `message_ts`; block_id, button text
        and value are taken from the clicked element in it unless given.
        """
        msg_obj, msg_json, message_ts = self._clicked_message(channel, message_ts, message)
        found, element = find_element(list((msg_json or {}).get("blocks") or []), action_id, option)
        ephemeral = msg_obj is not None and msg_obj.ephemeral_for is not None
        url = response_url or self.standin.new_response_url(channel=channel, user=user, message_ts=message_ts)
        self.last_response_url = url
        container: JSON = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        if msg_json and msg_json.get("thread_ts"):
            container["thread_ts"] = msg_json["thread_ts"]
        clicked = message_action(action_id, block_id or found, element, value, option)
        where: JSON = {"channel": {"id": channel, "name": self._channel_name(channel)}}
        payload = self._block_actions(user, container, where, clicked, response_url=url)
        if msg_json is not None and not ephemeral:
            payload["message"] = msg_json
        return await self._interaction(payload, retry)

    def _clicked_message(
        self, channel: str, message_ts: str | None, message: Message | JSON | None
    ) -> tuple[Message | None, JSON | None, str | None]:
        """The message clicked on (the stand-in's, when it has it), its JSON, and its ts."""
        msg_obj: Message | None = message if isinstance(message, Message) else None
        if message is None and message_ts is not None:
            msg_obj = self.standin.message(channel, message_ts)
        if msg_obj is not None:
            return msg_obj, self.standin.message_payload(msg_obj), message_ts or msg_obj.ts
        msg_json = dict(message) if isinstance(message, dict) else None
        return None, msg_json, message_ts or (str(msg_json["ts"]) if msg_json and "ts" in msg_json else None)

    def _block_actions(
        self, user: str, container: JSON, where: JSON, clicked: JSON, *, response_url: str | None = None
    ) -> JSON:
        """A ``block_actions`` payload: ``where`` is the channel, or the view, clicked in."""
        payload: JSON = {
            "type": "block_actions",
            "user": self._user(user),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": trigger_id(),
            "team": {"id": self.team_id, "domain": self.standin.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            **where,
            "state": {"values": {}},
        }
        if response_url is not None:
            payload["response_url"] = response_url
        payload["actions"] = [clicked]
        return payload

    async def _interaction(self, payload: JSON, retry: int) -> httpx.Response:
        """An interaction payload, sent as Slack does: the form field ``payload``."""
        self.last_payload = payload
        return await self._form({"payload": json.dumps(payload)}, retry_headers(retry))

    async def home_action(
        self, action_id: str, user: str = "U0ALICE", *, value: str | None = None, retry: int = 0
    ) -> httpx.Response:
        """A click on a button of the user's published Home tab (the one whose ``value`` is
        given, else the first with ``action_id``): ``block_actions`` from a view, no channel."""
        view = self.standin.home_views.get(user)
        if view is None:
            raise ValueError(f"{user} has no Home tab published")
        element = next(
            (
                (bid, el)
                for bid, el in elements(list(view.get("blocks") or []))
                if el.get("action_id") == action_id and (value is None or el.get("value") == value)
            ),
            None,
        )
        if element is None:
            raise ValueError(f"no {action_id} button with value {value!r} on {user}'s Home tab")
        block_id, el = element
        clicked = action(action_id, block_id, el.get("text"), el.get("value"), el.get("type", "button"))
        container = {"type": "view", "view_id": view["id"]}
        return await self._interaction(self._block_actions(user, container, {"view": view}, clicked), retry)

    async def view_submission(
        self, view: JSON, user: str = "U0ALICE", *, values: JSON | None = None, retry: int = 0
    ) -> httpx.Response:
        """A modal (as ``views.open`` received it) submitted by ``user``; ``values`` is the
        ``state.values`` Slack sends: ``{block_id: {action_id: {"type": ..., "value": ...}}}``."""
        payload: JSON = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.standin.team_domain},
            "user": self._user(user),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id(),
            "view": {**view, "id": view.get("id", "V00000001"), "state": {"values": values or {}}},
            "response_urls": [],
            "is_enterprise_install": False,
        }
        return await self._interaction(payload, retry)

    # ------------------------------------------------------------------ Events API

    async def app_home_opened(self, user: str = "U0ALICE", tab: str = "home") -> httpx.Response:
        """The user opens the app's Home (or Messages) tab: ``app_home_opened``, with the view
        published last, when there is one."""
        event: JSON = {"type": "app_home_opened", "user": user, "channel": "D0" + user[1:], "tab": tab}
        view = self.standin.home_views.get(user)
        if view is not None:
            event["view"] = view
        return await self.event(event)

    async def event(
        self,
        event: JSON,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        event_id: str | None = None,
    ) -> httpx.Response:
        """An Events API `event_callback` envelope around `event` (JSON body).

        A retry (`retry_num`) adds X-Slack-Retry-Num / X-Slack-Retry-Reason; pass the first
        delivery's `event_id` (see `last_payload`) to replay the same event like Slack does.
        """
        envelope = event_envelope(
            event,
            token=self.verification_token,
            team_id=self.team_id,
            api_app_id=self.api_app_id,
            bot_user_id=self.standin.bot_user_id,
            event_id=event_id,
        )
        self.last_payload = envelope
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        body = json.dumps(envelope).encode()
        return await self.raw(body, "application/json", headers=headers)

    async def function_executed(
        self,
        callback_id: str,
        inputs: JSON,
        *,
        execution_id: str | None = None,
        retry_num: int | None = None,
        event_id: str | None = None,
    ) -> httpx.Response:
        """A workflow reached the app's custom step ``callback_id``: a ``function_executed``
        event with the step's own token (kept by the stand-in for ``functions.complete*``).
        Pass the same ``execution_id`` (and ``event_id``) to deliver the same step again."""
        execution_id = execution_id or f"Fx{secrets.token_hex(5).upper()}"
        known = self.standin.function_executions.get(execution_id)
        token = known["token"] if known else f"xwfp-{secrets.token_hex(12)}"
        if known is None:
            self.standin.function_executions[execution_id] = {
                "token": token,
                "callback_id": callback_id,
                "state": "running",
                "outputs": None,
                "error": None,
            }
        event: JSON = {
            "type": "function_executed",
            "function": {"id": "Fn0RUN", "callback_id": callback_id, "title": callback_id, "type": "app"},
            "inputs": inputs,
            "function_execution_id": execution_id,
            "workflow_execution_id": "Wx0WORKFLOW",
            "event_ts": f"{time.time():.6f}",
            "bot_access_token": token,
        }
        return await self.event(event, retry_num=retry_num, event_id=event_id)

    def _message_event(self, kind: str, msg: Message) -> JSON:
        info = self.standin.channels.get(msg.channel, {})
        event: JSON = {
            "type": kind,
            "user": msg.user,
            "text": msg.text,
            "ts": msg.ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.team_id,
            "channel": msg.channel,
            "event_ts": msg.ts,
        }
        if kind == "message":
            event["channel_type"] = "im" if info.get("is_im") else ("group" if info.get("is_private") else "channel")
        if msg.thread_ts is not None:
            event["thread_ts"] = msg.thread_ts
            parent = self.standin.message(msg.channel, msg.thread_ts)
            if parent is not None and parent.user:
                event["parent_user_id"] = parent.user
        return event

    async def message_event(
        self, channel: str, user: str, text: str, thread_ts: str | None = None, ts: str | None = None
    ) -> httpx.Response:
        """A human posts `text` (stored in the stand-in, so conversations.replies sees it),
        then Slack delivers the `message` event."""
        msg = self.standin.post_user_message(channel, user, text, thread_ts, ts=ts)
        return await self.event(self._message_event("message", msg))

    async def app_mention(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> httpx.Response:
        """A human mentions the bot (message stored in the stand-in); an `app_mention` event."""
        msg = self.standin.post_user_message(channel, user, text, thread_ts)
        return await self.event(self._message_event("app_mention", msg))
