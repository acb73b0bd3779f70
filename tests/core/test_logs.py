"""Logs: one JSON line per event, with a request id; secrets never appear, not even inside
exception text, on any error path."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app.logs import JsonFormatter, TextFormatter, configure_logging
from bot.core.logs import REDACTED, Redactor
from bot.simulator import SAMPLE_FAILED_GIT_ID, Fault
from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, BOT_TOKEN, SIGNING_SECRET, running_harness, wait_for_rows

SECRETS = [BOT_TOKEN, SIGNING_SECRET, "sim-refresh-token", "xapp-1-A0TEST-secret"]


def test_redactor_removes_known_values_and_token_shapes() -> None:
    redactor = Redactor()
    redactor.add_secrets(["my-very-secret-value", "ab"])  # too short to redact safely
    text = redactor(
        "Authorization: Bearer eyJhbGciOi.eyJleHAiOjE.sig xoxb-1-2-abc xapp-1-A-2 "
        'refresh_token=zzz {"refreshToken": "qq"} api_token=abc my-very-secret-value ab'
    )
    assert "eyJ" not in text and "xoxb-1" not in text and "xapp-1" not in text
    assert "zzz" not in text and '"qq"' not in text and "my-very-secret-value" not in text
    assert text.endswith(" ab") and text.count(REDACTED) >= 7


def test_secrets_inside_exception_text_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError("login failed for token xoxb-123-456-secret and Bearer abc.def")
        except RuntimeError:
            log.exception("boom", extra={"header": "Bearer eyJx.eyJy.z"})
    finally:
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert "xoxb-123" not in stream.getvalue() and "eyJx" not in stream.getvalue()
    assert line["level"] == "error" and "RuntimeError" in line["exception"]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything the bot logs, at DEBUG, through both formatters."""
    stream = io.StringIO()
    handlers = []
    for formatter in (JsonFormatter(), TextFormatter()):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
        logging.getLogger().addHandler(handler)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    yield stream
    logging.getLogger().setLevel(level)
    for handler in handlers:
        logging.getLogger().removeHandler(handler)


async def test_no_secret_on_any_error_path(tmp_path: Path, captured: io.StringIO) -> None:
    async with running_harness(tmp_path, SLACK_APP_TOKEN="xapp-1-A0TEST-secret") as h:
        # success, then Code Stream refusing our login, 403, garbage, resets, Slack errors
        await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}")
        await wait_for_rows(h, 1)
        h.sim.expire_tokens()
        h.sim.inject(Fault(path="^/iaas/api/login$", status=400, body={"message": "Invalid refresh token"}))
        await h.send.slash_command(f"show {SAMPLE_FAILED_GIT_ID}")
        await wait_for(lambda: h.slack.responses)
        h.sim.clear_faults()
        for fault in (
            Fault(method="POST", path="/codestream/api/", status=403, body={"message": "no"}),
            Fault(method="POST", path="/codestream/api/", reset=True),
            Fault(method="GET", path="/codestream/api/", garbage=True),
        ):
            h.sim.inject(fault)
            await h.send.slash_command(f"resume gerrit {SAMPLE_FAILED_GIT_ID}")
            h.sim.clear_faults()
        h.slack.fail("chat.postMessage", error="invalid_auth", status=200, times=1)
        alert = h.slack.post_bot_message(
            ALERTS, "x", metadata={"event_type": "codestream_event", "event_payload": {"kind": "git", "id": "nope"}}
        )
        await h.send.message_event(ALERTS, "U0BOB", "rerun", thread_ts=alert.ts)
        await h.send.raw(b"token=" + BOT_TOKEN.encode(), "application/x-www-form-urlencoded", signature="v0=00")
        await wait_for(lambda: len(h.slack.responses) >= 3, timeout=10)
    text = captured.getvalue()
    assert text, "nothing was logged"
    for secret in SECRETS:
        assert secret not in text
    assert "Bearer ey" not in text
    json_lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    actions = [line for line in json_lines if line["logger"] == "bot.core.perform"]
    assert actions and all(line.get("request_id") for line in actions)


def test_configure_logging_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("bot.test").info("hello", extra={"event_id": "e1"})
    configure_logging("INFO", "text")
    logging.getLogger("bot.test").info("hello again")
    err = capsys.readouterr().err.splitlines()
    assert json.loads(err[0])["event_id"] == "e1"
    assert "hello again" in err[1] and not err[1].startswith("{")
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_codestream_bot", False):
            logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [
        "helm upgrade --set db.password=Sup3rS3cret payments ./chart",
        "PASSWORD: Sup3rS3cret",
        '{"user": "bot", "password": "Sup3rS3cret"}',
        "Authorization: Basic Ym90OlN1cDNyUzNjcmV0",
        "aws: AKIAIOSFODNN7EXAMPLE denied",
        "clone failed with ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "glpat-Sup3rS3cretSup3rS3cret",
        "docker login -u bot -p Sup3rS3cret registry.example.com",
        "deploy --password Sup3rS3cret",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_task_output_secrets_are_redacted(text: str) -> None:
    redacted = Redactor()(text)
    assert "Sup3rS3cret" not in redacted and REDACTED in redacted
    for secret in ("Ym90OlN1cDNyUzNjcmV0", "AKIAIOSFODNN7EXAMPLE", "ghp_0123456789", "MIIEpAIBAAKCAQEA"):
        assert secret not in redacted


def test_ordinary_flags_are_left_alone() -> None:
    for text in ("mkdir -p /var/lib/bot", "mvn -pl module test", "ls -p -l"):
        assert Redactor()(text) == text
