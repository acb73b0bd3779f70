"""The Slack stand-in, driven by the real slack_sdk clients over loopback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.simulator.slack_api import Message, SlackSender, SlackStandIn, sign, validate_blocks, wait_for

TOKEN = "xoxb-test-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

ALERT_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Git event failed"}},
    {
        "type": "section",
        "block_id": "summary",
        "text": {"type": "mrkdwn", "text": "*main* fix: things"},
        "fields": [{"type": "mrkdwn", "text": "*Status*\nFAILED"}],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "event `ge-1`"}]},
    {
        "type": "actions",
        "block_id": "alert-actions",
        "elements": [
            {
                "type": "button",
                "action_id": "cs_rerun",
                "value": "ge-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Rerun"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Rerun?"},
                    "text": {"type": "mrkdwn", "text": "Rerun the pipeline"},
                    "confirm": {"type": "plain_text", "text": "Rerun"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": "cs_resume",
                "value": "ge-1",
                "text": {"type": "plain_text", "text": "Resume"},
            },
        ],
    },
]
METADATA = {"event_type": "cs_alert", "event_payload": {"event_id": "ge-1", "kind": "git"}}


@pytest.fixture
async def sl() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(bot_token=TOKEN, team_id="T0TEST", bot_user_id="U0BOT", bot_id="B0BOT")
    await standin.start(host="127.0.0.1", port=0)
    yield standin
    await standin.stop()


@pytest.fixture
async def client(sl: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=sl.api_url)


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


# ---------------------------------------------------------------------------- Web API


async def test_auth_test_and_api_url(sl: SlackStandIn, client: AsyncWebClient) -> None:
    assert sl.api_url.startswith("http://127.0.0.1:")
    assert sl.api_url.endswith("/api/")
    resp = await client.auth_test()
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"] == "B0BOT"
    assert resp["team_id"] == "T0TEST"
    assert resp["url"].startswith("https://")
    assert [c.method for c in sl.calls] == ["auth.test"]


async def test_post_update_thread_and_metadata_roundtrip(sl: SlackStandIn, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(
        channel="C0ALERTS", text="Git event failed", blocks=ALERT_BLOCKS, metadata=METADATA, unfurl_links=False
    )
    ts = posted["ts"]
    assert posted["channel"] == "C0ALERTS"
    assert posted["message"]["bot_id"] == "B0BOT"
    call = sl.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == ALERT_BLOCKS
    assert call.args["metadata"] == METADATA

    reply = await client.chat_postMessage(channel="C0ALERTS", thread_ts=ts, text="Rerun started")
    human = sl.post_user_message("C0ALERTS", "U0ALICE", "rerun please", thread_ts=ts)
    updated = await client.chat_update(
        channel="C0ALERTS", ts=ts, text="Git event failed (rerun)", blocks=ALERT_BLOCKS[:2]
    )
    assert updated["ts"] == ts
    assert updated["message"]["edited"]["user"] == "U0BOT"

    thread = await client.conversations_replies(channel="C0ALERTS", ts=ts, include_all_metadata=True)
    msgs = thread["messages"]
    assert [m["ts"] for m in msgs] == [ts, reply["ts"], human.ts]
    assert ts < reply["ts"] < human.ts
    assert msgs[0]["metadata"] == METADATA
    assert msgs[0]["reply_count"] == 2
    assert msgs[0]["text"] == "Git event failed (rerun)"
    assert len(msgs[0]["blocks"]) == 2
    assert msgs[2]["user"] == "U0ALICE"
    assert msgs[2]["thread_ts"] == ts
    assert thread["has_more"] is False
    plain = await client.conversations_replies(channel="C0ALERTS", ts=ts)
    assert "metadata" not in plain["messages"][0]
    via_reply = await client.conversations_replies(channel="C0ALERTS", ts=human.ts)
    assert via_reply["messages"][0]["ts"] == ts

    stored = sl.message("C0ALERTS", ts)
    assert stored is not None
    assert stored.edited
    assert stored.metadata == METADATA
    assert [h.text for h in stored.history] == ["Git event failed"]
    assert len(stored.history[0].blocks) == 4
    assert [m.ts for m in sl.thread("C0ALERTS", ts)] == [ts, reply["ts"], human.ts]
    assert [m.ts for m in sl.messages("C0ALERTS")] == [ts, reply["ts"], human.ts]

    history = await client.conversations_history(channel="C0ALERTS", include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [ts]  # replies stay in the thread


async def test_replies_paginate_with_parent_on_every_page(sl: SlackStandIn, client: AsyncWebClient) -> None:
    parent = sl.post_bot_message("C0ALERTS", "alert")
    replies = [sl.post_user_message("C0ALERTS", "U0BOB", f"r{i}", thread_ts=parent.ts).ts for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_replies(channel="C0ALERTS", ts=parent.ts, limit=2, cursor=cursor)
        assert page["messages"][0]["ts"] == parent.ts
        seen += [m["ts"] for m in page["messages"][1:]]
        if not page["has_more"]:
            break
        cursor = page["response_metadata"]["next_cursor"]
    assert seen == replies


async def test_form_encoded_blocks_and_metadata_are_decoded(sl: SlackStandIn, client: AsyncWebClient) -> None:
    resp = await client.api_call(
        "chat.postMessage",
        data={
            "channel": "#cs-alerts",
            "text": "hi",
            "blocks": json.dumps(ALERT_BLOCKS),
            "metadata": json.dumps(METADATA),
        },
    )
    msg = sl.message("C0ALERTS", resp["ts"])
    assert msg is not None
    assert msg.blocks == ALERT_BLOCKS
    assert msg.metadata == METADATA
    bad = await api_error(client.api_call("chat.postMessage", data={"channel": "C0ALERTS", "blocks": "[{"}))
    assert bad.response["error"] == "invalid_blocks_format"


def _button(**over: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Go"}, **over}


def _actions(*elements: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "actions", "elements": list(elements)}]


def _confirm(**over: Any) -> dict[str, Any]:
    base = {
        "title": {"type": "plain_text", "text": "t"},
        "text": {"type": "mrkdwn", "text": "x"},
        "confirm": {"type": "plain_text", "text": "y"},
        "deny": {"type": "plain_text", "text": "n"},
    }
    return {**base, **over}


def _plain(n: int) -> dict[str, str]:
    return {"type": "plain_text", "text": "x" * n}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "/blocks/0/text/text"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}], "/blocks/0/fields/0/text"),
        ([{"type": "header", "text": _plain(151)}], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text/type"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "/blocks/0/elements"),
        (_actions(*[_button(action_id=f"a{i}") for i in range(26)]), "/blocks/0/elements"),
        (_actions(_button(text=_plain(76))), "/blocks/0/elements/0/text/text"),
        (_actions(_button(value="v" * 2001)), "/blocks/0/elements/0/value"),
        (_actions(_button(action_id="a" * 256)), "/blocks/0/elements/0/action_id"),
        (_actions(_button(url="https://x/" + "u" * 2991)), "/blocks/0/elements/0/url"),
        (_actions(_button(confirm=_confirm(title=_plain(101)))), "/blocks/0/elements/0/confirm/title/text"),
        (_actions(_button(confirm=_confirm(text=_plain(301)))), "/blocks/0/elements/0/confirm/text/text"),
        (_actions(_button(confirm=_confirm(confirm=_plain(31)))), "/blocks/0/elements/0/confirm/confirm/text"),
        (_actions(_button(confirm=_confirm(deny=_plain(31)))), "/blocks/0/elements/0/confirm/deny/text"),
        (_actions(_button(), _button()), "/blocks/0/elements/1/action_id"),
        ([{"type": "divider", "block_id": "b"}, {"type": "divider", "block_id": "b"}], "/blocks/1/block_id"),
        ([{"type": "fancy"}], "/blocks/0/type"),
    ],
)
async def test_invalid_blocks(
    sl: SlackStandIn, client: AsyncWebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    err = await api_error(client.chat_postMessage(channel="C0ALERTS", text="t", blocks=blocks))
    assert err.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in e for e in err.response["errors"]), err.response["errors"]
    assert sl.messages("C0ALERTS") == []


async def test_limits_at_the_boundary_are_valid(client: AsyncWebClient) -> None:
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "x" * 3000},
            "fields": [{"type": "mrkdwn", "text": "f" * 2000}],
        },
        {"type": "header", "text": _plain(150)},
        *_actions(
            _button(
                text=_plain(75),
                value="v" * 2000,
                action_id="a" * 255,
                confirm=_confirm(title=_plain(100), text=_plain(300), confirm=_plain(30)),
            )
        ),
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert validate_blocks(blocks) == []
    assert (await client.chat_postMessage(channel="C0ALERTS", text="t" * 40000, blocks=blocks))["ok"]


async def test_errors_like_slack(sl: SlackStandIn, client: AsyncWebClient) -> None:
    assert (await api_error(client.chat_postMessage(channel="C0ALERTS", text="x" * 40001))).response[
        "error"
    ] == "msg_too_long"
    assert (await api_error(client.chat_postMessage(channel="C0NOPE", text="x"))).response[
        "error"
    ] == "channel_not_found"
    with pytest.warns(UserWarning, match="text"):  # slack_sdk's own warning before the call
        assert (await api_error(client.chat_postMessage(channel="C0ALERTS"))).response["error"] == "no_text"
    assert (await api_error(client.chat_update(channel="C0ALERTS", ts="1.000001", text="x"))).response[
        "error"
    ] == "message_not_found"
    assert (await api_error(client.conversations_replies(channel="C0ALERTS", ts="1.000001"))).response[
        "error"
    ] == "thread_not_found"
    human = sl.post_user_message("C0ALERTS", "U0BOB", "mine")
    assert (await api_error(client.chat_update(channel="C0ALERTS", ts=human.ts, text="x"))).response[
        "error"
    ] == "cant_update_message"
    bad_meta = client.chat_postMessage(channel="C0ALERTS", text="x", metadata={"event_type": "x"})
    assert (await api_error(bad_meta)).response["error"] == "invalid_metadata_format"
    assert (await api_error(client.api_call("chat.fly"))).response["error"] == "unknown_method"


async def test_auth_errors(sl: SlackStandIn) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=sl.api_url)
    assert (await api_error(wrong.auth_test())).response["error"] == "invalid_auth"
    assert (await api_error(wrong.chat_postMessage(channel="C0ALERTS", text="x"))).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=sl.api_url)
    assert (await api_error(anonymous.auth_test())).response["error"] == "not_authed"
    assert sl.messages("C0ALERTS") == []
    assert [c.status for c in sl.calls] == [200, 200, 200]


async def test_ratelimited_fault_honoured_by_retry_handler(sl: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk waits Retry-After + random() seconds; pin random() to keep the test fast.
    monkeypatch.setattr("slack_sdk.http_retry.builtin_async_handlers.random.random", lambda: 0.0)
    sl.fail("chat.postMessage", "ratelimited", retry_after=0, times=2)
    retrying = AsyncWebClient(
        token=TOKEN, base_url=sl.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )
    resp = await retrying.chat_postMessage(channel="C0ALERTS", text="after the storm")
    assert resp["ok"]
    calls = sl.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert [m.text for m in sl.messages("C0ALERTS")] == ["after the storm"]

    sl.fail("chat.update", "ratelimited", retry_after=7)
    plain = AsyncWebClient(token=TOKEN, base_url=sl.api_url)
    err = await api_error(plain.chat_update(channel="C0ALERTS", ts=resp["ts"], text="x"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "7"
    assert err.response["error"] == "ratelimited"


async def test_server_error_and_persistent_faults(sl: SlackStandIn, client: AsyncWebClient) -> None:
    sl.fail("users.info", "internal_error", status=500)
    err = await api_error(client.users_info(user="U0ALICE"))
    assert err.response.status_code == 500
    assert err.response["error"] == "internal_error"
    assert (await client.users_info(user="U0ALICE"))["ok"]
    sl.fail("*", "fatal_error", times=None)
    for _ in range(2):
        assert (await api_error(client.auth_test())).response["error"] == "fatal_error"
    sl.clear_faults()
    assert (await client.auth_test())["ok"]


async def test_users_and_usergroups(sl: SlackStandIn, client: AsyncWebClient) -> None:
    sl.add_user("U0DAVE", "dave", real_name="Dave Example")
    sl.add_usergroup("S0RELEASE", "release-managers", ["U0ALICE", "U0DAVE"])
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert alice["name"] == "alice"
    assert alice["real_name"] == "Alice Example"
    assert alice["profile"]["display_name"] == "alice"
    assert alice["profile"]["real_name"] == "Alice Example"
    assert (await client.users_info(user="U0DAVE"))["user"]["real_name"] == "Dave Example"
    assert (await api_error(client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"
    members = await client.usergroups_users_list(usergroup="S0RELEASE")
    assert members["users"] == ["U0ALICE", "U0DAVE"]
    assert (await api_error(client.usergroups_users_list(usergroup="S0NONE"))).response["error"] == "no_such_subteam"
    groups = (await client.usergroups_list(include_users=True))["usergroups"]
    assert groups[0]["handle"] == "release-managers"
    assert groups[0]["users"] == ["U0ALICE", "U0DAVE"]
    assert "users" not in (await client.usergroups_list())["usergroups"][0]
    info = await client.conversations_info(channel="C0ALERTS")
    assert info["channel"]["name"] == "cs-alerts"


async def test_ephemeral_and_permalink(sl: SlackStandIn, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel="C0ALERTS", text="alert")
    eph = await client.chat_postEphemeral(channel="C0ALERTS", user="U0ALICE", text="only you", thread_ts=parent["ts"])
    assert eph["message_ts"]
    assert [(m.ephemeral_for, m.text, m.thread_ts) for m in sl.ephemerals] == [("U0ALICE", "only you", parent["ts"])]
    assert [m.ts for m in sl.messages("C0ALERTS")] == [parent["ts"]]
    link = await client.chat_getPermalink(channel="C0ALERTS", message_ts=parent["ts"])
    assert link["permalink"].endswith("/archives/C0ALERTS/p" + parent["ts"].replace(".", ""))


# ---------------------------------------------------------------------------- response_url


async def test_response_url_posting(sl: SlackStandIn, client: AsyncWebClient) -> None:
    alert = await client.chat_postMessage(channel="C0ALERTS", text="alert", blocks=ALERT_BLOCKS)
    url = sl.new_response_url(channel="C0ALERTS", user="U0ALICE", message_ts=alert["ts"])
    assert url.startswith(sl.base_url + "/response/")
    hook = AsyncWebhookClient(url)

    first = await hook.send(text="working on it")  # ephemeral by default
    assert first.status_code == 200
    assert [(m.ephemeral_for, m.text) for m in sl.ephemerals] == [("U0ALICE", "working on it")]

    in_thread = {"text": "Rerun started", "response_type": "in_channel", "thread_ts": alert["ts"]}
    assert (await hook.send_dict(in_thread)).status_code == 200
    assert (await hook.send(text="Rerunning", blocks=ALERT_BLOCKS[:1], replace_original=True)).status_code == 200
    original = sl.message("C0ALERTS", alert["ts"])
    assert original is not None
    assert original.text == "Rerunning"
    assert original.blocks == ALERT_BLOCKS[:1]
    assert original.history[0].text == "alert"
    assert [m.text for m in sl.thread("C0ALERTS", alert["ts"])] == ["Rerunning", "Rerun started"]
    assert [r.action for r in sl.responses] == ["ephemeral", "in_channel", "replaced"]
    assert sl.responses[1].body["response_type"] == "in_channel"

    bad = await hook.send(text="x", blocks=[{"type": "header", "text": _plain(151)}])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    assert sl.response_errors[-1][2]  # the details say why

    assert (await hook.send(text="four")).status_code == 200
    assert (await hook.send(delete_original=True)).status_code == 200
    assert sl.messages("C0ALERTS")[0].text == "Rerun started"
    used = await hook.send(text="six")
    assert (used.status_code, used.body) == (404, "used_url")
    assert len(sl.responses) == 5


async def test_response_url_expiry(sl: SlackStandIn) -> None:
    url = sl.new_response_url(channel="C0ALERTS", user="U0BOB")
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json={"text": "ok", "response_type": "in_channel"})).status_code == 200
        sl.expire_response_url(url)
        late = await http.post(url, json={"text": "too late"})
        assert (late.status_code, late.text) == (404, "expired_url")
        short = sl.new_response_url(channel="C0ALERTS", user="U0BOB", ttl=-1.0)  # born expired
        assert (await http.post(short, json={"text": "x"})).text == "expired_url"
    assert [m.text for m in sl.messages("C0ALERTS")] == ["ok"]


# ---------------------------------------------------------------------------- SlackSender


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)

    @property
    def last(self) -> tuple[dict[str, str], bytes, bool]:
        return self.requests[-1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    verifier = SignatureVerifier(signing_secret=SECRET)
    box: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        valid = bool(verifier.is_valid_request(body, headers))
        box[0].requests.append((headers, body, valid))
        return web.Response(status=200 if valid else 401, text="" if valid else "invalid signature")

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    box.append(Receiver(url=f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"))
    yield box[0]
    await runner.cleanup()


@pytest.fixture
async def snd(sl: SlackStandIn, receiver: Receiver) -> AsyncIterator[SlackSender]:
    async with SlackSender(bot_url=receiver.url, signing_secret=SECRET, standin=sl, team_id="T0TEST") as sender:
        yield sender


async def test_sender_slash_command_is_signed_form(sl: SlackStandIn, snd: SlackSender, receiver: Receiver) -> None:
    resp = await snd.slash_command(text="rerun ge-1", user="U0ALICE", channel="C0ALERTS", command="/codestream")
    assert resp.status_code == 200
    headers, body, valid = receiver.last
    assert valid
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["X-Slack-Signature"] == sign(SECRET, headers["X-Slack-Request-Timestamp"], body)
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form["command"] == "/codestream"
    assert form["text"] == "rerun ge-1"
    assert form["user_id"] == "U0ALICE"
    assert form["user_name"] == "alice"
    assert form["channel_id"] == "C0ALERTS"
    assert form["channel_name"] == "cs-alerts"
    assert form["team_id"] == "T0TEST"
    assert form["api_app_id"]
    assert form["trigger_id"]
    assert form["response_url"] == snd.last_response_url
    async with httpx.AsyncClient() as http:
        await http.post(form["response_url"], json={"text": "on it"})
    assert sl.responses[0].user == "U0ALICE"
    assert sl.ephemerals_for("U0ALICE")[0].text == "on it"


async def test_sender_block_action_payload(
    sl: SlackStandIn, snd: SlackSender, receiver: Receiver, client: AsyncWebClient
) -> None:
    alert = await client.chat_postMessage(channel="C0ALERTS", text="alert", blocks=ALERT_BLOCKS, metadata=METADATA)
    resp = await snd.block_action(action_id="cs_rerun", user="U0BOB", channel="C0ALERTS", message_ts=alert["ts"])
    assert resp.status_code == 200
    headers, body, valid = receiver.last
    assert valid
    assert "X-Slack-Retry-Num" not in headers
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "cs_rerun",
        "alert-actions",
        "ge-1",
        "button",
    )
    assert action["text"]["text"] == "Rerun"
    assert action["action_ts"]
    assert payload["container"] == {
        "type": "message",
        "message_ts": alert["ts"],
        "channel_id": "C0ALERTS",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "C0ALERTS", "name": "cs-alerts"}
    assert payload["user"] == {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0TEST"}
    assert payload["message"]["ts"] == alert["ts"]
    assert payload["message"]["blocks"] == ALERT_BLOCKS
    assert payload["response_url"] == snd.last_response_url
    assert payload["trigger_id"]
    async with httpx.AsyncClient() as http:
        await http.post(payload["response_url"], json={"text": "rerun by bob", "replace_original": True})
    msg = sl.message("C0ALERTS", alert["ts"])
    assert msg is not None
    assert msg.text == "rerun by bob"

    await snd.block_action(action_id="cs_resume", value="other", message=Message("C0ALERTS", "1.000001"), retry=1)
    headers, body, valid = receiver.last
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert valid
    assert headers["X-Slack-Retry-Num"] == "1"
    assert payload["actions"][0]["value"] == "other"


async def test_sender_events(sl: SlackStandIn, snd: SlackSender, receiver: Receiver, client: AsyncWebClient) -> None:
    alert = await client.chat_postMessage(channel="C0ALERTS", text="alert")
    await snd.message_event("C0ALERTS", "U0CAROL", "rerun", thread_ts=alert["ts"])
    headers, body, valid = receiver.last
    envelope = json.loads(body)
    assert valid
    assert headers["Content-Type"] == "application/json"
    assert envelope["type"] == "event_callback"
    assert envelope["team_id"] == "T0TEST"
    assert envelope["event_id"].startswith("Ev")
    assert isinstance(envelope["event_time"], int)
    assert envelope["authorizations"][0]["user_id"] == "U0BOT"
    assert envelope["authorizations"][0]["is_bot"]
    event = envelope["event"]
    assert (event["type"], event["user"], event["text"], event["thread_ts"]) == (
        "message",
        "U0CAROL",
        "rerun",
        alert["ts"],
    )
    assert event["channel_type"] == "channel"
    assert event["parent_user_id"] == "U0BOT"
    replies = await client.conversations_replies(channel="C0ALERTS", ts=alert["ts"])
    assert [m["ts"] for m in replies["messages"]] == [alert["ts"], event["ts"]]

    await snd.event(event, retry_num=1, retry_reason="http_timeout", event_id=envelope["event_id"])
    headers, body, valid = receiver.last
    assert valid
    assert headers["X-Slack-Retry-Num"] == "1"
    assert headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert json.loads(body)["event_id"] == envelope["event_id"]

    await snd.app_mention("C0ALERTS", "U0ALICE", "<@U0BOT> show ge-1")
    mention = json.loads(receiver.last[1])["event"]
    assert mention["type"] == "app_mention"
    assert mention["text"] == "<@U0BOT> show ge-1"
    assert sl.messages("C0ALERTS")[-1].ts == mention["ts"]


async def test_sender_forged_and_stale_requests_are_rejected(snd: SlackSender, receiver: Receiver) -> None:
    body = b'{"type":"event_callback"}'
    assert (await snd.raw(body, "application/json")).status_code == 200
    assert (await snd.raw(body, "application/json", signature="v0=" + "0" * 64)).status_code == 401
    stale = int(time.time()) - 6 * 60
    resp = await snd.raw(body, "application/json", timestamp=stale)
    assert resp.status_code == 401
    assert receiver.last[0]["X-Slack-Signature"] == sign(SECRET, stale, body)  # correctly signed, just old
    assert [valid for _, _, valid in receiver.requests] == [True, False, False]


# ---------------------------------------------------------------------------- Socket Mode


async def test_apps_connections_open_and_socket_hello(sl: SlackStandIn) -> None:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    bot = AsyncWebClient(token=TOKEN, base_url=sl.api_url)
    assert (await api_error(bot.apps_connections_open(app_token=TOKEN))).response["error"] == "invalid_auth"
    opened = await bot.apps_connections_open(app_token="xapp-1-A0CODESTREAM-1-abc")
    assert opened["url"] == sl.socket_url

    seen: list[dict[str, Any]] = []

    async def on_message(_client: Any, message: dict[str, Any], _raw: str | None) -> None:
        seen.append(message)

    async def on_request(socket: Any, req: SocketModeRequest) -> None:
        await socket.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    sm: Any = SocketModeClient(  # untyped connect()/close()
        app_token="xapp-1-A0CODESTREAM-1-abc", web_client=bot
    )
    sm.message_listeners.append(on_message)
    sm.socket_mode_request_listeners.append(on_request)
    try:
        await sm.connect()
        hello = await wait_for(lambda: next((m for m in seen if m.get("type") == "hello"), None))
        assert hello["connection_info"]["app_id"] == "A0CODESTREAM"
        envelope_id = await sl.socket_deliver("events_api", {"type": "event_callback", "event": {"type": "x"}})
        ack = await wait_for(lambda: sl.socket_acks.get(envelope_id))
        assert ack["envelope_id"] == envelope_id
    finally:
        await sm.close()
    await wait_for(lambda: sl.socket_connections == 0)


async def test_wait_for_reports_timeouts() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05s waiting for the answer"):
        await wait_for(lambda: None, timeout=0.05, message="the answer")
    assert await wait_for(lambda: 42) == 42


async def test_bolt_app_accepts_sender_requests_and_replies_through_standin(sl: SlackStandIn) -> None:
    """SlackSender's requests pass a real Bolt AsyncApp's verification and parsing."""
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=sl.api_url), signing_secret=SECRET)

    async def command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"got {command['text']}", response_type="in_channel")

    async def rerun(ack: Any, respond: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        await respond(text=f"rerun by <@{body['user']['id']}>", replace_original=True)
        await client.chat_postMessage(
            channel=body["channel"]["id"], thread_ts=body["container"]["message_ts"], text="started"
        )

    async def message(event: dict[str, Any], say: Any) -> None:
        await say(text=f"echo {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    app.command("/codestream")(command)
    app.action("cs_rerun")(rerun)
    app.event("message")(message)

    async def handle(request: web.Request) -> web.Response:
        response: web.Response = await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))
        return response

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        async with SlackSender(url, SECRET, sl) as snd:
            assert (await snd.slash_command("rerun ge-1", user="U0BOB")).status_code == 200
            said = await wait_for(lambda: sl.responses)
            assert (said[0].action, said[0].text, said[0].user) == ("in_channel", "got rerun ge-1", "U0BOB")

            alert = sl.post_bot_message("C0ALERTS", "alert", ALERT_BLOCKS, metadata=METADATA)
            assert (await snd.block_action("cs_rerun", message_ts=alert.ts)).status_code == 200
            await wait_for(lambda: len(sl.thread("C0ALERTS", alert.ts)) == 2)
            assert alert.text == "rerun by <@U0ALICE>"

            assert (await snd.message_event("C0ALERTS", "U0CAROL", "rerun", thread_ts=alert.ts)).status_code == 200
            await wait_for(lambda: len(sl.thread("C0ALERTS", alert.ts)) == 4)
            thread = sl.thread("C0ALERTS", alert.ts)
            assert [(m.user, m.text) for m in thread] == [
                ("U0BOT", "rerun by <@U0ALICE>"),
                ("U0BOT", "started"),
                ("U0CAROL", "rerun"),
                ("U0BOT", "echo rerun"),
            ]
            forged = await snd.raw(b'{"type":"event_callback"}', "application/json", signature="v0=" + "1" * 64)
            assert forged.status_code == 401
    finally:
        await runner.cleanup()
