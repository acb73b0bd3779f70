"""Every listener's payload, mutated: a well-formed payload for each action id, the decision
form's submission and each event the bot listens to, with one field anywhere in it replaced by
any JSON value (a string where Slack sends an object, a list where it sends a string...). Slack
never sends these, but a signed request must still get an answer below 500 and never an
unhandled exception (the module's bot fails the run if one is logged)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.verbs import CONTROLS
from bot.slack.render.approval import ACTION_APPROVE, ACTION_REJECT, DECISION_VIEW, MESSAGE_BLOCK, MESSAGE_INPUT
from bot.slack.render.buttons import ACTION_OPEN, ACTION_RERUN, ACTION_RESUME
from bot.slack.render.digest import ACTION_DIGEST_ROW, ACTION_RERUN_ALL
from bot.slack.render.mute import ACTION_MUTE
from tests.harness import ALERTS
from tests.slack.test_fuzz import FUZZ, Background, watched_bot

UNKNOWN = "00000000-0000-4000-8000-00000000dead"  # no Code Stream object has it: nothing can run
ACTION_IDS = [
    ACTION_RERUN,
    ACTION_RESUME,
    ACTION_OPEN,
    ACTION_MUTE,
    ACTION_DIGEST_ROW,
    ACTION_RERUN_ALL,
    ACTION_APPROVE,
    ACTION_REJECT,
    *(spec.button_action_id for spec in CONTROLS.values()),
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def bg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    yield from watched_bot(tmp_path_factory, "fuzz-payloads")


def _user() -> dict[str, Any]:
    return {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0TEAM"}


def block_action(bg: Background, action_id: str) -> dict[str, Any]:
    value = json.dumps({"kind": "git", "id": UNKNOWN}, separators=(",", ":"))
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "b1",
        "type": "button",
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }
    if action_id in (ACTION_MUTE, ACTION_DIGEST_ROW):
        action |= {"type": "overflow", "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": value}}
    return {
        "type": "block_actions",
        "user": _user(),
        "api_app_id": bg.h.send.api_app_id,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": bg.alert.ts, "channel_id": ALERTS, "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "team": {"id": bg.h.send.team_id, "domain": "acme"},
        "channel": {"id": ALERTS, "name": "cs-alerts"},
        "message": {"type": "message", "ts": bg.alert.ts, "text": "x", "blocks": []},
        "response_url": bg.h.slack.new_response_url(channel=ALERTS, user="U0ALICE"),
        "actions": [action],
    }


def decision_form(bg: Background) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": bg.h.send.team_id, "domain": "acme"},
        "user": _user(),
        "api_app_id": bg.h.send.api_app_id,
        "token": "legacy-verification-token",
        "trigger_id": "1.2.3",
        "view": {
            "id": "V0001",
            "type": "modal",
            "callback_id": DECISION_VIEW,
            "private_metadata": json.dumps({"op": UNKNOWN, "decision": "APPROVED"}),
            "state": {"values": {MESSAGE_BLOCK: {MESSAGE_INPUT: {"type": "plain_text_input", "value": "ok"}}}},
        },
    }


def event(bg: Background, inner: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": bg.h.send.team_id,
        "api_app_id": bg.h.send.api_app_id,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(time.time()),
        "event": inner,
    }


def bases(bg: Background) -> list[dict[str, Any]]:
    message = {"type": "message", "channel": ALERTS, "user": "U0BOB", "text": "rerun", "ts": "1.000200"}
    return [
        *(block_action(bg, action_id) for action_id in ACTION_IDS),
        decision_form(bg),
        event(bg, {**message, "thread_ts": bg.alert.ts}),
        event(bg, {"type": "app_mention", "channel": ALERTS, "user": "U0BOB", "text": "<@U0BOT> help", "ts": "1.3"}),
        event(bg, {"type": "app_home_opened", "user": "U0BOB", "channel": "D0BOB", "tab": "home"}),
    ]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value (the root excluded): dict keys and list indexes."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


@FUZZ
@given(st.data())
def test_a_payload_with_any_field_of_any_type_is_answered_without_a_crash(bg: Background, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(bases(bg)))
    path = data.draw(st.sampled_from(list(paths(base))))
    mutated = replaced(base, path, data.draw(JSON_VALUES))
    if mutated.get("type") == "event_callback":
        body, content_type = json.dumps(mutated).encode(), "application/json"
    else:
        body, content_type = urlencode({"payload": json.dumps(mutated)}).encode(), "application/x-www-form-urlencoded"
    resp = bg.run(bg.h.send.raw(body, content_type))
    assert resp.status_code < 500, (path, resp.status_code)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("view", "state", "values", MESSAGE_BLOCK), "a string"),  # the review's three crashes
        (("view",), "a string"),
        (("actions", 0, "selected_option"), "not an object"),
    ],
)
def test_the_reviews_malformed_payloads_get_an_answer(bg: Background, where: tuple[Any, ...], value: Any) -> None:
    base = decision_form(bg) if where[0] == "view" else block_action(bg, ACTION_MUTE)
    body = urlencode({"payload": json.dumps(replaced(base, where, value))}).encode()
    resp = bg.run(bg.h.send.raw(body, "application/x-www-form-urlencoded"))
    assert resp.status_code < 500


@pytest.mark.parametrize("field", ["team", "enterprise", "user"])
def test_an_event_whose_envelope_ids_are_not_strings_gets_a_400(bg: Background, field: str) -> None:
    """Found by review: Bolt's own id extraction raised on `{"team": 5}` around an event."""
    inner = {"type": "app_mention", "channel": ALERTS, "user": "U0BOB", "text": "<@U0BOT> help", "ts": "1.4"}
    body = json.dumps({**event(bg, inner), field: 5}).encode()
    resp = bg.run(bg.h.send.raw(body, "application/json"))
    assert resp.status_code == 400


@pytest.mark.parametrize("field", ["event", "view", "actions", "container", "message"])
def test_a_null_where_slack_sends_an_object_gets_a_400(bg: Background, field: str) -> None:
    """Bolt reads some of these as ``body.get(field, {})``: a JSON null there raised inside it."""
    if field == "event":
        body = json.dumps({**event(bg, {"type": "app_home_opened", "user": "U0BOB"}), "event": None}).encode()
        resp = bg.run(bg.h.send.raw(body, "application/json"))
    else:
        base = decision_form(bg) if field == "view" else block_action(bg, ACTION_RERUN)
        payload = urlencode({"payload": json.dumps({**base, field: None})}).encode()
        resp = bg.run(bg.h.send.raw(payload, "application/x-www-form-urlencoded"))
    assert resp.status_code == 400
