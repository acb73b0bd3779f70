"""The Block Kit renderers: facts in blocks and text, escaping, Slack's limits, button values,
and snapshot files of the main messages (``UPDATE_SNAPSHOTS=1`` rewrites them)."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.codestream.errors import (
    AuthenticationFailed,
    BadRequest,
    BadResponse,
    CodeStreamError,
    Forbidden,
    InvalidId,
    NotFound,
    RateLimited,
    ServerError,
    TLSFailure,
    Unavailable,
)
from bot.codestream.ids import is_server_id, validate_server_id
from bot.codestream.models import DockerRegistryEvent, Event, EventKind, Execution, GerritEvent, GitEvent
from bot.core.errors import AccessDenied, BotError, OutcomeUnconfirmed, StoreUnavailable, UsageError
from bot.core.requests import ActionRequest, Actor, Outcome, OutcomeStatus, PriorAction, Verb
from bot.simulator.slack_blocks import validate_blocks
from bot.slack.commands import COMMANDS
from bot.slack.render import text as t
from bot.slack.render.base import event_metadata
from bot.slack.render.buttons import ACTION_OPEN, ACTION_RERUN, ACTION_RESUME, button_value, parse_button_value
from bot.slack.render.messages import (
    METADATA_EVENT_TYPE,
    SlackMessage,
    render_alert,
    render_alert_in_progress,
    render_alert_resolved,
    render_error,
    render_event_list,
    render_followup,
    render_help,
    render_outcome,
    render_usage_error,
)

NOW = datetime(2024, 5, 6, 12, 0, 0, tzinfo=UTC)
EVENT_ID = "8365ef3b-8bf3-48aa-bd5d-7113fcff827c"
EXEC_ID = "0f9d5a3c-2b1e-4c6a-9a8e-5d4c3b2a1f00"
NEW_EXEC_ID = "5b7e2c1d-9a8f-4e3d-8c2b-1a0f9e8d7c6b"
COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
SUBJECT = "Fix rounding in invoice totals"
EXEC_URL = f"https://vra.example.com/codestream/#/executions/{EXEC_ID}"
NEW_EXEC_URL = f"https://vra.example.com/codestream/#/executions/{NEW_EXEC_ID}"
COMMIT_URL = f"https://git.example.com/payments/payments-api/commit/{COMMIT}"
ALICE = "U0ALICE01"
BOB = "U0BOB0002"
HUGE = 10_000
SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots" / "blocks"


# --- builders ------------------------------------------------------------------------------------


def git_event(**overrides: Any) -> GitEvent:
    doc: dict[str, Any] = {
        "id": EVENT_ID,
        "name": "payments-api push",
        "project": "Payments",
        "pipeline": "payments-ci",
        "owner": "bob@example.com",
        "repo": "payments-api",
        "targetBranch": "main",
        "subject": f"{SUBJECT}\n\nTotals were rounded per line instead of per invoice.",
        "commitId": COMMIT,
        "httpURL": COMMIT_URL,
        "executionLink": f"/codestream/api/executions/{EXEC_ID}",
        "executionIndex": 7,
        "executionStatus": "FAILED",
        "message": "Pipeline payments-ci failed at stage Build, task unit-tests.",
        "_updateTimeInMicros": int((NOW - timedelta(minutes=5)).timestamp()) * 1_000_000,
    }
    doc.update(overrides)
    return GitEvent.model_validate({k: v for k, v in doc.items() if v is not None})


def request(verb: Verb = "rerun", *, kind: EventKind = "git", event_id: str = EVENT_ID) -> ActionRequest:
    return ActionRequest(
        verb=verb, kind=kind, event_id=event_id, actor=Actor(ALICE, "alice"), surface="button", request_id="req0123abcd"
    )


def outcome(status: OutcomeStatus, *, verb: Verb = "rerun", **kwargs: Any) -> Outcome:
    kwargs.setdefault("at", NOW - timedelta(seconds=3))
    return Outcome(request=request(verb), status=status, **kwargs)


def new_execution(status: str = "RUNNING", *, duration: float | None = None) -> Execution:
    doc: dict[str, Any] = {
        "id": NEW_EXEC_ID,
        "name": "payments-ci",
        "index": 8,
        "project": "Payments",
        "status": status,
    }
    if duration is not None:
        doc["_durationInMicros"] = int(duration * 1_000_000)
    return Execution.model_validate(doc)


def started(**event_overrides: Any) -> Outcome:
    event = git_event(
        executionLink=f"/codestream/api/executions/{NEW_EXEC_ID}",
        executionIndex=8,
        executionStatus="RUNNING",
        message=None,
        **event_overrides,
    )
    return outcome("started", event=event, execution=new_execution(), execution_url=NEW_EXEC_URL)


# --- checks ----------------------------------------------------------------------------------------

# The Slack syntax the renderers build themselves; any other "<" or ">" is an escaping bug.
_TOKEN = re.compile(
    r"<(?:https?://[^\s|<>]+\|[^|<>]+"
    r"|@[UWB][A-Z0-9]+"
    r"|!subteam\^[A-Z0-9]+(?:\|[^|<>]+)?"
    r"|!date\^\d+\^[^|<>]+\|[^|<>]+"
    r"|!here|!channel)>"
)
_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _texts(value: Any) -> list[str]:
    """Every ``text`` string in a block structure."""
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        return found + [s for v in value.values() for s in _texts(v)]
    if isinstance(value, list):
        return [s for v in value for s in _texts(v)]
    return []


def _check_len(text: Any, limit: int, where: str) -> None:
    assert isinstance(text, str), where
    assert 0 < len(text) <= limit, f"{where}: {len(text)} characters (limit {limit})"


def _check_markup(text: str, where: str) -> None:
    """No raw < or > except our own tokens and block-quote markers; no bare &."""
    bare = _TOKEN.sub("", text)
    bare = re.sub(r"(?m)^>", "", bare)
    assert "<" not in bare and ">" not in bare, f"{where}: unescaped markup in {text!r}"
    assert not _ENTITY.search(text), f"{where}: bare & in {text!r}"


def _check_overflow(element: dict[str, Any], where: str) -> None:
    """Block Kit's overflow menu: 2 to 5 options, plain-text labels of 75, values of 150."""
    options = element["options"]
    assert 2 <= len(options) <= 5, f"{where}: {len(options)} options"
    for k, option in enumerate(options):
        assert option["text"]["type"] == "plain_text"
        _check_len(option["text"]["text"], 75, f"{where}/options/{k}/text")
        _check_len(option["value"], 150, f"{where}/options/{k}/value")


def _check_button(element: dict[str, Any], where: str) -> None:
    if element.get("type") == "overflow":
        _check_overflow(element, where)
        return
    _check_len(element["text"]["text"], 75, f"{where}/text")
    assert element["text"]["type"] == "plain_text"
    if "value" in element:
        _check_len(element["value"], 2000, f"{where}/value")
    if "url" in element:
        _check_len(element["url"], 3000, f"{where}/url")
    if "confirm" in element:
        confirm = element["confirm"]
        _check_len(confirm["title"]["text"], 100, f"{where}/confirm/title")
        _check_len(confirm["text"]["text"], 300, f"{where}/confirm/text")
        _check_len(confirm["confirm"]["text"], 30, f"{where}/confirm/confirm")
        _check_len(confirm["deny"]["text"], 30, f"{where}/confirm/deny")


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """Slack's Block Kit limits, plus our escaping invariants."""
    assert 0 < len(blocks) <= 50
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text"
            _check_len(block["text"]["text"], 150, where)
        elif kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                _check_len(block["text"]["text"], 3000, where)
            for j, f in enumerate(block.get("fields", [])):
                _check_len(f["text"], 2000, f"{where}/fields/{j}")
            assert len(block.get("fields", [])) <= 10
            if "accessory" in block:
                _check_button(block["accessory"], f"{where}/accessory")
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for j, el in enumerate(block["elements"]):
                _check_len(el["text"], 2000, f"{where}/elements/{j}")
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            ids = [el["action_id"] for el in block["elements"]]
            assert len(ids) == len(set(ids)), f"{where}: duplicate action ids"
            for j, el in enumerate(block["elements"]):
                _check_button(el, f"{where}/elements/{j}")
        else:
            assert kind == "divider", f"{where}: unexpected block type {kind}"
    for text in _texts(blocks):
        _check_markup(text, "blocks")
    assert validate_blocks(blocks) == []


def assert_valid(message: SlackMessage) -> None:
    assert_valid_blocks(message.blocks)
    _check_len(message.text, 3000, "text")
    _check_markup(message.text, "text")
    json.dumps(dataclasses.asdict(message))  # serialisable as sent


def block_text(message: SlackMessage) -> str:
    return "\n".join(_texts(message.blocks))


def assert_everywhere(message: SlackMessage, *needles: str) -> None:
    """Each fact is in the blocks AND in the notification text (bold markers aside)."""
    blocks = t.strip_links(block_text(message)).replace("*", "")
    for needle in needles:
        assert needle in blocks, f"{needle!r} not in blocks"
        assert needle in message.text, f"{needle!r} not in text {message.text!r}"


def elements(message: SlackMessage) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in message.blocks:
        if block["type"] == "actions":
            found.extend(block["elements"])
        elif block["type"] == "section" and "accessory" in block:
            found.append(block["accessory"])
    return found


def buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [e for e in elements(message) if e.get("type") == "button"]


def overflow_values(message: SlackMessage) -> list[str]:
    return [o["value"] for e in elements(message) if e.get("type") == "overflow" for o in e["options"]]


def assert_snapshot(name: str, message: SlackMessage) -> None:
    """Compare with tests/snapshots/blocks/<name>.json; UPDATE_SNAPSHOTS=1 (re)writes it."""
    actual = json.dumps(dataclasses.asdict(message), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path}; run the tests with UPDATE_SNAPSHOTS=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), "snapshot", "rendered"))
        pytest.fail(f"snapshot {name} differs (UPDATE_SNAPSHOTS=1 accepts the change):\n{diff}")


# --- the summary -----------------------------------------------------------------------------------


def test_started_summary_shows_every_fact_in_blocks_and_text() -> None:
    message = render_outcome(started(), now=NOW)
    assert_valid(message)
    assert_everywhere(message, "Rerun started", SUBJECT, "main", "payments-ci #8", "RUNNING", f"<@{ALICE}>")
    blocks = block_text(message)
    assert f"<{NEW_EXEC_URL}|payments-ci #8>" in blocks
    assert f"<{COMMIT_URL}|a1b2c3d>" in blocks
    for fact in ("payments-api", "Payments", "`main`", "<!date^"):
        assert fact in blocks
    assert "Totals were rounded" not in blocks  # only the subject line of the commit message
    assert message.metadata is None


@pytest.mark.parametrize(
    ("status", "kwargs", "says"),
    [
        ("failed", {"error": ServerError(status=500)}, "Rerun failed"),
        (
            "unknown",
            {"error": OutcomeUnconfirmed(), "settled_late": True},
            "may have started — check the execution before trying again",
        ),
        ("not_started", {"error": Unavailable()}, "did not start — safe to try again"),
        ("denied", {"error": AccessDenied("Only #payments-oncall may rerun payments-ci.")}, "Rerun denied"),
        ("shown", {}, "Git event"),
    ],
)
def test_each_outcome_status_says_what_happened(status: OutcomeStatus, kwargs: dict[str, Any], says: str) -> None:
    message = render_outcome(outcome(status, event=git_event(), execution_url=EXEC_URL, **kwargs), now=NOW)
    assert_valid(message)
    assert_everywhere(message, says, SUBJECT, "main", "FAILED", f"<@{ALICE}>")
    if "error" in kwargs:
        assert kwargs["error"].user_message in block_text(message)


def test_an_unknown_outcome_being_checked_says_so_and_never_invites_a_retry() -> None:
    until = NOW + timedelta(minutes=5)
    message = render_outcome(outcome("unknown", event=git_event(), error=Unavailable(), settle_by=until), now=NOW)
    assert_valid(message)
    assert_everywhere(message, "Rerun sent — outcome not known yet", "do not try again meanwhile", SUBJECT)
    assert "try again in a minute" not in (message.text + block_text(message)).lower()
    assert f"<!date^{int(until.timestamp())}" in block_text(message)


def test_no_run_by_the_deadline_is_safe_to_try_again_and_says_how_long_it_waited() -> None:
    message = render_outcome(
        outcome("not_started", event=git_event(), settled_late=True, settle_by=NOW + timedelta(minutes=5, seconds=-3)),
        now=NOW,
    )
    assert_everywhere(message, "Rerun did not start", "no run appeared within 5 min; safe to try again")


def test_a_duplicate_of_an_intent_in_flight_says_who_is_doing_what() -> None:
    prior = PriorAction(actor=Actor(BOB), at=NOW - timedelta(seconds=4), status="unknown", verb="rerun")
    message = render_outcome(outcome("duplicate", verb="resume", event=git_event(), prior=prior), now=NOW)
    assert_everywhere(message, "Already in hand", f"<@{BOB}>'s rerun of this event is in progress")


def test_duplicate_names_who_did_it_when_and_links_their_execution() -> None:
    prior = PriorAction(actor=Actor(BOB), at=NOW - timedelta(seconds=12), status="started", execution_url=NEW_EXEC_URL)
    message = render_outcome(outcome("duplicate", event=git_event(), prior=prior, at=NOW), now=NOW)
    assert_valid(message)
    assert_everywhere(message, f"Already rerun by <@{BOB}> 12 s ago", SUBJECT, "main")
    assert f"<{NEW_EXEC_URL}|" in block_text(message)


def test_resume_duplicate_uses_the_past_tense() -> None:
    prior = PriorAction(actor=Actor(BOB), at=NOW - timedelta(minutes=3), status="started", verb="resume")
    message = render_outcome(outcome("duplicate", verb="rerun", event=git_event(), prior=prior), now=NOW)
    assert "Already resumed by" in message.text and "3 min ago" in message.text


def test_outcome_without_event_still_names_the_event_and_actor() -> None:
    message = render_outcome(outcome("failed", error=NotFound(status=404)), now=NOW)
    assert_valid(message)
    assert_everywhere(message, "Rerun failed", f"<@{ALICE}>", EVENT_ID)
    assert "Code Stream has no such item." in block_text(message)


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (NotFound(status=404), f"Code Stream has no Git event `{EVENT_ID}`"),
        (Forbidden(status=403, server_message="user svc-bot lacks role Executor"), "service account may not do this"),
        (AuthenticationFailed(status=401), "cannot log in to Code Stream; an operator must fix its token"),
        (Unavailable(), "Code Stream is unavailable or slow; try again in a minute"),
        (TLSFailure(), "Code Stream is unavailable or slow; try again in a minute"),
        (RateLimited(retry_after=30), "Try again in 30 s"),
        (RateLimited(), "Try again shortly"),
        (InvalidId(), "not a valid Code Stream id"),
        (UsageError("Usage: `/codestream rerun <id>`"), "Usage: `/codestream rerun &lt;id&gt;`"),
        (BadResponse(status=200), "could not read"),
        (BadRequest(status=400, server_message="action must be Resume or Rerun"), "action must be Resume or Rerun"),
        (ServerError(status=500, server_message="NullPointerException"), "(HTTP 500)"),
        (AccessDenied("Only #payments-oncall may rerun payments-ci."), "Only #payments-oncall may rerun"),
        (StoreUnavailable(), "database is unavailable"),
        (CodeStreamError(), "Code Stream returned an error"),
        (BotError(), "Something went wrong"),
    ],
)
def test_errors_render_by_class_with_their_user_message(error: CodeStreamError | BotError, says: str) -> None:
    message = render_outcome(outcome("failed", event=git_event(), error=error), now=NOW)
    assert_valid(message)
    blocks = block_text(message)
    assert says in blocks
    assert t.escape(error.user_message) in blocks
    assert "Traceback" not in blocks and "Traceback" not in message.text
    alone = render_error(error, kind="git", event_id=EVENT_ID)
    assert_valid(alone)
    assert says in block_text(alone)


def test_forbidden_shows_the_server_message_but_auth_failure_shows_no_details() -> None:
    forbidden = render_outcome(outcome("failed", error=Forbidden(status=403, server_message="role Executor")), now=NOW)
    assert "role Executor" in block_text(forbidden)
    auth = AuthenticationFailed(status=401, server_message="token eyJhbGciOi expired for svc-bot")
    message = render_outcome(outcome("failed", error=auth), now=NOW)
    assert "eyJhbGciOi" not in block_text(message) and "eyJhbGciOi" not in message.text
    assert "401" not in block_text(message)


def test_followup_shows_status_emoji_and_duration() -> None:
    message = render_followup(started(), execution=new_execution("COMPLETED", duration=192), now=NOW)
    assert_valid(message)
    assert_everywhere(message, "✅ COMPLETED in 3m 12s", SUBJECT, "main", f"<@{ALICE}>")
    running = render_followup(started(), execution=new_execution("RUNNING", duration=45), now=NOW)
    assert "⏳ *RUNNING* · running for 45s" in block_text(running)
    for status, emoji in (("FAILED", "❌"), ("CANCELED", "⛔"), ("WAITING", "⏸"), ("PAUSED", "⏸")):
        assert f"{emoji} *{status}*" in block_text(render_followup(started(), execution=new_execution(status), now=NOW))


def test_followup_gave_up_says_after_how_long() -> None:
    out = dataclasses.replace(started(), at=NOW - timedelta(hours=6))
    message = render_followup(out, execution=new_execution("RUNNING", duration=6 * 3600), now=NOW, gave_up=True)
    assert_valid(message)
    assert_everywhere(message, "Gave up following after 6 h", "RUNNING")


# --- the alert -------------------------------------------------------------------------------------


def test_alert_has_facts_buttons_with_confirm_and_metadata() -> None:
    message = render_alert(git_event(), execution_url=EXEC_URL, mention="<!subteam^S0PAYMENTS>", now=NOW)
    assert_valid(message)
    assert message.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "❌ payments-ci failed", "emoji": True},
    }
    assert_everywhere(message, "<!subteam^S0PAYMENTS>", "payments-ci failed", SUBJECT, "main", "FAILED", "payments-api")
    assert message.blocks[1]["text"]["text"].startswith("<!subteam^S0PAYMENTS>")
    blocks = block_text(message)
    for fact in (
        f"<{EXEC_URL}|payments-ci #7>",
        f"<{COMMIT_URL}|a1b2c3d>",
        "bob@example.com",
        "Payments",
        "unit-tests",
    ):
        assert fact in blocks
    rerun, resume, open_ = buttons(message)
    assert (rerun["action_id"], rerun["style"], rerun["text"]["text"]) == (ACTION_RERUN, "primary", "Rerun")
    # The ⋯ menu: mute the pipeline for 1 h / 1 d / until it passes, or the branch for 1 d / until it passes.
    assert [v.split("|", 2)[2] for v in overflow_values(message)] == [
        "pipeline|1h",
        "pipeline|1d",
        "pipeline|pass",
        "branch|1d",
        "branch|pass",
    ]
    assert (resume["action_id"], resume["text"]["text"]) == (ACTION_RESUME, "Resume")
    assert "style" not in resume
    for button in (rerun, resume):
        assert parse_button_value(button["value"]) == ("git", EVENT_ID)
        confirm = button["confirm"]
        assert confirm["deny"]["text"] == "Cancel"
        assert "`main`" in confirm["text"]["text"] and "`a1b2c3d`" in confirm["text"]["text"]
    assert rerun["confirm"]["title"]["text"] == "Rerun payments-ci?"
    assert rerun["confirm"]["confirm"]["text"] == "Rerun"
    assert resume["confirm"]["title"]["text"] == "Resume payments-ci?"
    assert (open_["action_id"], open_["url"]) == (ACTION_OPEN, EXEC_URL)
    assert message.metadata == {"event_type": METADATA_EVENT_TYPE, "event_payload": {"kind": "git", "id": EVENT_ID}}


def test_alert_without_execution_url_has_no_open_button() -> None:
    message = render_alert(git_event(), execution_url=None, now=NOW)
    assert_valid(message)
    assert [b["action_id"] for b in buttons(message)] == [ACTION_RERUN, ACTION_RESUME]
    assert "payments-ci #7" in block_text(message)


def test_alert_for_a_trigger_failure() -> None:
    event = git_event(executionLink=None, executionIndex=None, executionStatus=None, message="No pipeline matched")
    message = render_alert(event, execution_url=None, now=NOW)
    assert_valid(message)
    assert message.blocks[0]["text"]["text"] == "⚠️ payments-ci: trigger failed"
    assert_everywhere(message, "trigger failed", SUBJECT, "main")
    assert "No pipeline matched" in block_text(message)


def test_a_trigger_failure_says_what_to_fix_for_its_cause() -> None:
    expired = git_event(
        executionLink=None,
        executionIndex=None,
        executionStatus=None,
        message="Invalid Oauth Refresh token. Verify webhook configuration.",
    )
    message = render_alert(expired, execution_url=None, now=NOW)
    assert_valid(message)
    text = block_text(message)
    assert "API token saved in the git webhook expired or was revoked" in text
    assert "Triggers › Git › Webhooks" in text and "save a new API token" in text
    assert "delete the webhook and create it again" in text  # when the Git endpoint itself changed
    other = render_alert(
        git_event(executionLink=None, executionIndex=None, executionStatus=None, message="No pipeline <b>matched"),
        execution_url=None,
        now=NOW,
    )
    assert_valid(other)
    assert "API token" not in block_text(other) and "check the git webhook" in block_text(other).lower()
    assert "<b>" not in block_text(other)  # escaped


def test_alert_user_mention_and_bogus_mention() -> None:
    assert render_alert(git_event(), execution_url=None, mention="<@U0ONCALL>", now=NOW).text.startswith("<@U0ONCALL>")
    bogus = render_alert(git_event(), execution_url=None, mention="<!everyone> <script>", now=NOW)
    assert_valid(bogus)
    assert "&lt;!everyone&gt;" in bogus.text


def test_alert_in_progress_replaces_buttons_with_who_acted() -> None:
    message = render_alert_in_progress(git_event(), verb="rerun", actor_id=ALICE, execution_url=EXEC_URL, now=NOW)
    assert_valid(message)
    assert buttons(message) == []
    assert_everywhere(message, f"🔁 Rerun requested by <@{ALICE}>", SUBJECT, "main")
    assert message.metadata == event_metadata("git", EVENT_ID)


@pytest.mark.parametrize(
    ("outcome_status", "final_status", "reason", "says", "has_buttons"),
    [
        ("started", "COMPLETED", None, f"Fixed by rerun #8 by <@{ALICE}>", False),
        ("started", "FAILED", None, f"Rerun #8 by <@{ALICE}> failed again (FAILED)", True),
        ("started", "CANCELED", None, "was canceled", True),
        ("started", "RUNNING", None, f"Rerun #8 by <@{ALICE}> is RUNNING", False),
        ("started", None, None, "is running", False),
        ("unknown", None, None, f"Rerun by <@{ALICE}> may have started — check", False),  # no second-run button
        ("checking", None, None, f"Rerun by <@{ALICE}> sent — checking whether it started", False),
        ("failed", None, "Code Stream refused", f"Rerun by <@{ALICE}> failed: Code Stream refused", True),
        ("not_started", None, "timed out", "did not start: timed out — safe to try again", True),
        ("denied", None, "not in #payments", "was denied: not in #payments", True),
    ],
)
def test_alert_resolved(
    outcome_status: str, final_status: str | None, reason: str | None, says: str, has_buttons: bool
) -> None:
    started_ok = outcome_status == "started"
    message = render_alert_resolved(
        git_event(),
        verb="rerun",
        actor_id=ALICE,
        outcome_status=outcome_status,
        execution_url=NEW_EXEC_URL if started_ok else None,
        execution_index=8 if started_ok else None,
        final_status=final_status,
        now=NOW,
        reason=reason,
    )
    assert_valid(message)
    assert_everywhere(message, says, SUBJECT, "main")
    assert bool(buttons(message)) == has_buttons
    assert message.metadata == event_metadata("git", EVENT_ID)
    if final_status == "COMPLETED":
        assert message.blocks[0]["text"]["text"] == "✅ payments-ci fixed"
        assert f"<{NEW_EXEC_URL}|rerun #8>" in block_text(message)


def test_gerrit_and_docker_events_render() -> None:
    gerrit = GerritEvent.model_validate(
        {
            "id": EVENT_ID,
            "pipeline": "payments-review",
            "gerritProject": "payments/api",
            "branch": "main",
            "subject": SUBJECT,
            "properties": {"GERRIT_PATCHSET_REVISION": COMMIT, "GERRIT_CHANGE_URL": "https://review.example.com/c/42"},
            "executionStatus": "FAILED",
        }
    )
    docker = DockerRegistryEvent.model_validate(
        {
            "id": EVENT_ID,
            "pipeline": "image-ci",
            "repoNamespace": "payments",
            "repo": "api",
            "imageName": "api",
            "tag": "1.4.2",
        }
    )
    for event in (gerrit, docker):
        message = render_alert(event, execution_url=None, now=NOW)
        assert_valid(message)
        assert message.metadata == event_metadata(event.kind, EVENT_ID)
        assert parse_button_value(buttons(message)[0]["value"]) == (event.kind, EVENT_ID)
    assert "<https://review.example.com/c/42|a1b2c3d>" in block_text(render_alert(gerrit, execution_url=None, now=NOW))
    assert "api:1.4.2" in render_alert(docker, execution_url=None, now=NOW).text


def test_event_without_valid_id_gets_no_action_buttons_or_metadata() -> None:
    message = render_alert(git_event(id="../../etc"), execution_url=EXEC_URL, now=NOW)
    assert_valid(message)
    assert [b["action_id"] for b in buttons(message)] == [ACTION_OPEN]
    assert overflow_values(message) == []  # nothing to mute from an event the bot cannot name
    assert message.metadata is None


# --- list, help, usage -------------------------------------------------------------------------------


def test_event_list_shows_ten_with_rerun_buttons_and_counts_the_rest() -> None:
    ids = [f"{i:08x}-8bf3-48aa-bd5d-7113fcff827c" for i in range(14)]
    events: list[Event] = [git_event(id=i, subject=f"Change {n}") for n, i in enumerate(ids)]
    message = render_event_list(events, execution_urls={ids[0]: EXEC_URL}, now=NOW)
    assert_valid(message)
    listed = [b for b in message.blocks if b["type"] == "section"]
    assert len(listed) == 10
    assert [parse_button_value(b["accessory"]["value"]) for b in listed] == [("git", i) for i in ids[:10]]
    assert all(b["accessory"]["action_id"] == ACTION_RERUN for b in listed)
    assert "4 more" in block_text(message) and "4 more" in message.text
    assert f"<{EXEC_URL}|payments-ci #7>" in listed[0]["text"]["text"]
    assert "5 min ago" in listed[0]["text"]["text"]


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    message = render_event_list([git_event()], execution_urls={}, now=naive)
    assert "5 min ago" in block_text(message)


def test_empty_event_list() -> None:
    message = render_event_list([], execution_urls={}, now=NOW)
    assert_valid(message)
    assert_everywhere(message, "No failed events 🎉")


def test_help_and_usage_error() -> None:
    help_message = render_help([(COMMANDS.line(c), c.help) for c in COMMANDS])
    assert_valid(help_message)
    assert "/codestream rerun" in block_text(help_message) and "/codestream rerun" in help_message.text
    usage = render_usage_error(UsageError("Usage: `/codestream rerun <event id>` & more"))
    assert_valid(usage)
    assert_everywhere(usage, "Usage: `/codestream rerun &lt;event id&gt;` &amp; more")


# --- escaping and truncation ----------------------------------------------------------------------

NASTY = "<script>alert(1)</script> & <!channel> <@U0EVIL> <https://evil.example|click> *bold* `tick`"


def nasty_event(**overrides: Any) -> GitEvent:
    fields: dict[str, Any] = {
        "subject": NASTY,
        "targetBranch": "feat/<x>&y`z",
        "repo": "repo<&>",
        "pipeline": "pipe|line<&>",
        "project": "proj&<>",
        "owner": "<!here>",
        "message": f"line one {NASTY}\nline two > quoted",
        "httpURL": "https://git.example.com/c?a=1&b=<2>|x",
    }
    fields.update(overrides)
    return git_event(**fields)


def all_renderings(event: GitEvent) -> list[SlackMessage]:
    out = outcome("started", event=event, execution=new_execution(), execution_url=NEW_EXEC_URL)
    prior = PriorAction(actor=Actor(BOB), at=NOW, status="started", execution_url=NEW_EXEC_URL)
    return [
        render_outcome(out, now=NOW),
        render_outcome(outcome("failed", event=event, error=Forbidden(server_message=event.message)), now=NOW),
        render_outcome(outcome("duplicate", event=event, prior=prior), now=NOW),
        render_followup(out, execution=new_execution("COMPLETED", duration=3), now=NOW),
        render_followup(out, execution=new_execution("RUNNING"), now=NOW, gave_up=True),
        render_alert(event, execution_url=EXEC_URL, mention="<@U0ONCALL>", now=NOW),
        render_alert_in_progress(event, verb="resume", actor_id=ALICE, execution_url=EXEC_URL, now=NOW),
        render_alert_resolved(
            event,
            verb="rerun",
            actor_id=ALICE,
            outcome_status="failed",
            execution_url=None,
            execution_index=None,
            final_status=None,
            now=NOW,
            reason=event.message,
        ),
        render_event_list([event] * 12, execution_urls={EVENT_ID: EXEC_URL}, now=NOW),
        render_usage_error(UsageError(event.message)),
        render_error(ServerError(server_message=event.message)),
    ]


def test_values_from_code_stream_are_escaped_everywhere() -> None:
    for message in all_renderings(nasty_event()):
        assert_valid(message)  # no raw markup besides our own tokens
        everything = block_text(message) + message.text
        assert "<script>" not in everything and "<!channel>" not in everything and "<@U0EVIL>" not in everything
        assert "<!here>" not in everything and "<https://evil" not in everything
    alert = render_alert(nasty_event(), execution_url=EXEC_URL, now=NOW)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;" in block_text(alert)
    assert "&lt;script&gt;" in alert.text
    assert "feat/&lt;x&gt;&amp;y" in block_text(alert) and "feat/&lt;x&gt;&amp;y" in alert.text
    # The URL's own | and < > are encoded, so the label cannot be broken out of.
    assert "<https://git.example.com/c?a=1&amp;b=%3C2%3E%7Cx|a1b2c3d>" in block_text(alert)


def test_link_labels_cannot_break_out() -> None:
    event = git_event(pipeline="ci|<https://evil.example|win>")
    message = render_alert(event, execution_url=EXEC_URL, now=NOW)
    assert_valid(message)
    execution_field = next(f["text"] for b in message.blocks for f in b.get("fields", []) if "Execution" in f["text"])
    assert execution_field.count("|") == 1 and execution_field.count("<") == 1


@pytest.mark.parametrize("filler", ["x", "&", "<", "é", "🙂", "a b\n"])
def test_ten_kilobyte_values_still_make_valid_blocks(filler: str) -> None:
    huge = filler * HUGE
    event = nasty_event(
        subject=huge,
        targetBranch=huge,
        repo=huge,
        pipeline=huge,
        project=huge,
        owner=huge,
        message=huge,
        executionStatus=huge,
    )
    for message in all_renderings(event):
        assert_valid(message)
        assert len(message.text) <= 600
    long_alert = render_alert(event, execution_url=EXEC_URL, now=NOW)
    assert long_alert.blocks[0]["text"]["text"].endswith("failed")
    assert "…" in block_text(long_alert)


def test_huge_errors_and_urls_still_make_valid_blocks() -> None:
    huge = "<&>" * HUGE
    for error in (
        ServerError(huge, server_message=huge),
        UsageError(huge),
        AccessDenied(huge),
        Forbidden(server_message=huge),
    ):
        for message in (
            render_outcome(outcome("failed", event=git_event(), error=error), now=NOW),
            render_error(error),
            render_usage_error(error),
        ):
            assert_valid(message)
    long_url = "https://vra.example.com/" + "a" * 5000
    message = render_alert(git_event(httpURL=long_url), execution_url=long_url, now=NOW)
    assert_valid(message)
    assert long_url not in json.dumps(message.blocks)  # dropped, not truncated into a broken link


def test_truncation_never_cuts_an_entity_or_token() -> None:
    for n in range(1, 40):
        cut = t.truncate("&amp;" * 10, n)
        assert len(cut) <= n
        assert not re.search(r"&(?!amp;)", cut), cut
        linked = t.truncate("see " + "<https://x.example/a|label> " * 5, n)
        assert linked.count("<") == linked.count(">"), linked
    assert t.truncate("short", 10) == "short"


def test_text_helpers() -> None:
    assert t.escape("a&b<c>d") == "a&amp;b&lt;c&gt;d"
    assert t.first_line("\n  Fix it  \nbody") == "Fix it"
    assert t.duration(192) == "3m 12s" and t.duration(45) == "45s" and t.duration(3720) == "1h 2m"
    assert t.age(12) == "12 s" and t.age(300) == "5 min" and t.age(6 * 3600) == "6 h"
    assert t.slack_date(NOW) == "<!date^1714996800^{date_short_pretty} {time}|2024-05-06 12:00 UTC>"
    assert t.user_mention("U123ABC") == "<@U123ABC>" and t.user_mention("<!channel>") == "&lt;!channel&gt;"
    assert t.link("javascript:alert(1)", "x") == "x"


# --- button values and metadata -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["git", "gerrit", "docker"])
def test_button_values_round_trip(kind: EventKind) -> None:
    value = button_value(kind, EVENT_ID)
    assert value == f'{{"kind":"{kind}","id":"{EVENT_ID}"}}'
    assert len(value) < 2000
    assert parse_button_value(value) == (kind, EVENT_ID)
    assert parse_button_value(button_value(kind, EVENT_ID.upper())) == (kind, EVENT_ID)
    assert event_metadata(kind, EVENT_ID) == {
        "event_type": "codestream_event",
        "event_payload": {"kind": kind, "id": EVENT_ID},
    }


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not json",
        "[]",
        "null",
        "42",
        '"git"',
        '{"kind":"git"}',
        f'{{"id":"{EVENT_ID}"}}',
        f'{{"kind":"svn","id":"{EVENT_ID}"}}',
        f'{{"kind":["git"],"id":"{EVENT_ID}"}}',
        f'{{"kind":{{"a":1}},"id":"{EVENT_ID}"}}',
        '{"kind":"git","id":"../../etc/passwd"}',
        '{"kind":"git","id":42}',
        '{"kind":"git","id":null}',
        f'{{"kind":"git","id":"{EVENT_ID}/x"}}',
        '{"kind":"git","id":".."}',
        '{"kind":"git","id":"a b"}',
        '{"kind":"git","id":"%2e%2e"}',
        '{"kind":"git","id":"x?action=Rerun"}',
        f'{{"kind":"git","id":"{EVENT_ID}","pad":"{"x" * 5000}"}}',
        "[" * 100_000,
        '{"kind":"git","id":"' + "9" * 10_000 + '"}',
    ],
)
def test_parse_button_value_rejects_garbage_with_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_button_value(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_button_value_raises_only_usage_error_on_any_text(value: str) -> None:
    try:
        kind, event_id = parse_button_value(value)
    except UsageError:
        return
    assert parse_button_value(button_value(kind, event_id)) == (kind, event_id)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON, st.fixed_dictionaries({"kind": _JSON, "id": _JSON})))
def test_parse_button_value_raises_only_usage_error_on_any_json(data: Any) -> None:
    try:
        kind, event_id = parse_button_value(json.dumps(data))
    except UsageError:
        return
    assert (kind, event_id) == (data["kind"], validate_server_id(data["id"]))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["git", "gerrit", "docker", "GIT", "svn", ""]),
    st.one_of(st.uuids().map(str), st.uuids().map(lambda u: f" {str(u).upper()} "), st.text(max_size=60)),
)
def test_parse_button_value_on_near_valid_values(kind: str, event_id: str) -> None:
    value = json.dumps({"kind": kind, "id": event_id}, separators=(",", ":"))
    try:
        parsed = parse_button_value(value)
    except UsageError:
        assert kind not in ("git", "gerrit", "docker") or not is_server_id(event_id)
        return
    # The rule a button is drawn by: a UUID canonical (lower-case), any other safe shape as is.
    assert parsed == (kind, validate_server_id(event_id))


# --- snapshots ---------------------------------------------------------------------------------------


def _snapshot_cases() -> dict[str, SlackMessage]:
    prior = PriorAction(actor=Actor(BOB), at=NOW - timedelta(seconds=12), status="started", execution_url=NEW_EXEC_URL)
    trigger_failure = git_event(
        executionLink=None, executionIndex=None, executionStatus=None, message="No pipeline matched branch main."
    )
    return {
        "started": render_outcome(started(), now=NOW),
        "failed-not-found": render_outcome(outcome("failed", error=NotFound(status=404)), now=NOW),
        "unknown": render_outcome(
            outcome(
                "unknown",
                event=git_event(),
                error=Unavailable("Code Stream did not answer within 30 s."),
                settle_by=NOW + timedelta(minutes=5),
            ),
            now=NOW,
        ),
        "unknown-unconfirmed": render_outcome(
            outcome("unknown", event=git_event(), error=OutcomeUnconfirmed(), settled_late=True), now=NOW
        ),
        "duplicate": render_outcome(outcome("duplicate", event=git_event(), prior=prior, at=NOW), now=NOW),
        "denied": render_outcome(
            outcome("denied", event=git_event(), error=AccessDenied("Only #payments-oncall may rerun payments-ci.")),
            now=NOW,
        ),
        "alert": render_alert(git_event(), execution_url=EXEC_URL, mention="<!subteam^S0PAYMENTS>", now=NOW),
        "alert-trigger-failure": render_alert(trigger_failure, execution_url=None, now=NOW),
        "alert-resolved": render_alert_resolved(
            git_event(),
            verb="rerun",
            actor_id=ALICE,
            outcome_status="started",
            execution_url=NEW_EXEC_URL,
            execution_index=8,
            final_status="COMPLETED",
            now=NOW,
        ),
        "followup-completed": render_followup(started(), execution=new_execution("COMPLETED", duration=192), now=NOW),
    }


@pytest.mark.parametrize("name", list(_snapshot_cases()))
def test_snapshot(name: str) -> None:
    message = _snapshot_cases()[name]
    assert_valid(message)
    assert_snapshot(name, message)
