"""Bad input, generated: slash-command text, thread replies, button values and whole payloads.
The bot must never answer 5xx, never log an unhandled exception, and never call Code Stream
for anything that is not a valid intent.

The default run uses a modest number of examples; a nightly-style run sets FUZZ_EXAMPLES
(e.g. ``FUZZ_EXAMPLES=10000 pytest tests/slack/test_fuzz.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.core.errors import UsageError
from bot.simulator import SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import Message
from bot.slack.commands import parse_command
from bot.slack.parse import parse_thread_reply
from bot.slack.render.buttons import ACTION_RERUN, ACTION_RESUME, parse_button_value
from tests.harness import ALERTS, Harness, running_harness

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
T = TypeVar("T")


class ErrorLog(logging.Handler):
    """Collects every ERROR record with an exception: an unhandled error anywhere in the bot."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Background:
    """A whole bot on its own event loop thread, so synchronous hypothesis tests can drive it."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = AsyncExitStack()
        self.h: Harness = self.run(self.stack.enter_async_context(running_harness(tmp_path)))
        self.alert: Message = self.run(self.h.post_alert("git", SAMPLE_FAILED_GIT_ID))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def watched_bot(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Background]:
    """A module's background bot; at the end, any unhandled exception it logged fails the run."""
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    background = Background(tmp_path_factory.mktemp(name))
    try:
        yield background
    finally:
        background.close()
        logging.getLogger().removeHandler(errors)
    unhandled = [r for r in errors.records if r.exc_info]
    assert unhandled == [], [r.getMessage() for r in unhandled]


@pytest.fixture(scope="module")
def bg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    yield from watched_bot(tmp_path_factory, "fuzz")


def codestream_calls(bg: Background) -> int:
    return len([r for r in bg.h.sim.requests if r.path.startswith("/codestream/api/")])


@FUZZ
@given(st.text(max_size=400))
def test_slash_command_text(bg: Background, text: str) -> None:
    try:
        parsed = parse_command(text)
    except UsageError:
        parsed = None
    assume(parsed is None or parsed.command == "help")  # only inputs that must not reach Code Stream
    before = codestream_calls(bg)
    resp = bg.run(bg.h.send.slash_command(text))
    assert resp.status_code == 200
    body = resp.json()  # usage errors and help are answered in the ack itself
    assert body["response_type"] == "ephemeral" and body["text"]
    assert codestream_calls(bg) == before


@FUZZ
@given(st.text(max_size=300))
def test_button_values(bg: Background, value: str) -> None:
    try:
        parse_button_value(value)
        valid = True
    except UsageError:
        valid = False
    assume(not valid)
    before = codestream_calls(bg)
    for action in (ACTION_RERUN, ACTION_RESUME):
        resp = bg.run(bg.h.send.block_action(action, value, channel=ALERTS, message_ts=bg.alert.ts))
        assert resp.status_code == 200
    assert codestream_calls(bg) == before


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=50),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
        max_leaves=20,
    ),
    st.sampled_from(["json", "form-payload", "form-fields"]),
)
def test_whole_payloads(bg: Background, payload: Any, shape: str) -> None:
    if shape == "json":
        body, content_type = json.dumps(payload).encode(), "application/json"
    elif shape == "form-payload":
        body, content_type = urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"
    else:
        fields = payload if isinstance(payload, dict) else {"text": payload}
        body = urlencode({str(k): json.dumps(v) for k, v in fields.items()}).encode()
        content_type = "application/x-www-form-urlencoded"
    before = codestream_calls(bg)
    resp = bg.run(bg.h.send.raw(body, content_type))
    assert resp.status_code < 500
    assert codestream_calls(bg) == before


@FUZZ
@given(st.text(max_size=200))
def test_thread_replies(bg: Background, text: str) -> None:
    assume(parse_thread_reply(text, "U0BOT") is None and "<@" not in text)
    resp = bg.run(bg.h.send.message_event(ALERTS, "U0BOB", text, thread_ts=bg.alert.ts))
    assert resp.status_code == 200


def test_after_fuzzing_nothing_was_ever_posted(bg: Background) -> None:
    # A marker reply the bot answers: every earlier delivery was acked before it was sent, and
    # ignoring a message does no I/O, so by its answer any stray action would have shown.
    thread = bg.h.slack.thread(ALERTS, bg.alert.ts)
    bg.run(bg.h.send.message_event(ALERTS, "U0BOB", "status", thread_ts=bg.alert.ts))

    def bot_replies() -> list[Message]:
        # The thread starts with the alert itself (the bot's too): only replies count.
        return [m for m in bg.h.slack.thread(ALERTS, bg.alert.ts) if m.user == "U0BOT" and m.ts != bg.alert.ts]

    deadline = time.monotonic() + 10
    while not bot_replies():
        assert time.monotonic() < deadline, "no answer to the marker"
        time.sleep(0.01)
    replies = bot_replies()
    assert len(replies) == 1, [m.text for m in replies]
    assert len(thread) >= 1
    assert bg.h.sim.count("POST", "/codestream/api/") == 0
