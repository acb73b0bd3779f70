"""The storm digest: one message listing many failures of a channel, each row with a menu (Rerun,
Resume, Open execution), and **Rerun all failed** behind a confirmation that names the count.
Rows show what happened to them since (who acted, how the run went), as alerts do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

from slack_sdk.models.blocks import ButtonElement, OverflowMenuElement, PlainTextObject
from slack_sdk.models.blocks import Option as BlockOption

from bot.codestream.errors import InvalidId
from bot.codestream.ids import validate_server_id
from bot.codestream.models import Event, EventKind, as_kind
from bot.core.digests import DigestFacts, RowState, still_failing
from bot.core.errors import UsageError
from bot.core.requests import Outcome
from bot.core.verbs import MUTATING, Verb, verb_spec
from bot.slack.render import text as t
from bot.slack.render.alert import is_checking, is_trigger_failure, resolution
from bot.slack.render.base import (
    MAX_BUTTON_URL,
    NAME_LEN,
    ExecutionRef,
    SlackMessage,
    actions,
    branch,
    button,
    cap_blocks,
    confirm_dialog,
    context,
    execution_link,
    fallback_text,
    header,
    outcome_tally,
    section,
    subject,
)
from bot.slack.render.buttons import ACTION_OPEN
from bot.store import DigestRow

ACTION_DIGEST_ROW: Final = "codestream_digest_row"
ACTION_RERUN_ALL: Final = "codestream_digest_rerun_all"
DIGEST_ACTIONS_BLOCK_ID: Final = "codestream_digest_actions"
METADATA_DIGEST_TYPE: Final = "codestream_digest"
_OPEN: Final = "open"
THREAD_ANSWER: Final = (
    "This thread belongs to a digest of several failures, so a reply here names none of them. "
    "Use a row's ⋯ menu (Rerun, Resume), *Rerun all failed*, or `/codestream rerun <event id>`."
)
_BAD_VALUE: Final = "That menu option is not one the bot made."


def row_value(verb: str, kind: str, event_id: str, execution_index: int | None) -> str:
    """A row menu option: the verb, the event, and the run the row lists (acted on only while
    it is still the event's latest)."""
    return f"{verb}|{kind}|{event_id}|{'none' if execution_index is None else execution_index}"


def parse_row_value(value: str) -> tuple[Verb, EventKind, str, int | None] | None:
    """A row menu's option -> (verb, kind, event id, listed run); None for "Open execution"."""
    if value == _OPEN:
        return None
    parts = value.split("|") if isinstance(value, str) and len(value) <= 150 else []
    if len(parts) != 4:
        raise UsageError(_BAD_VALUE)
    spec, kind = verb_spec(parts[0]), as_kind(parts[1])
    index = None if parts[3] == "none" else int(parts[3]) if parts[3].isdigit() and len(parts[3]) < 10 else -1
    if spec is None or not spec.mutates or kind is None or index == -1:
        raise UsageError(_BAD_VALUE)
    try:
        return spec.name, kind, validate_server_id(parts[2]), index
    except InvalidId as exc:
        raise UsageError(_BAD_VALUE) from exc


def _accessory(row: DigestRow, execution_url: str | None, act: bool) -> OverflowMenuElement | ButtonElement | None:
    """A row still failing: a menu (Rerun, Resume, Open execution). A row someone acted on: the
    link to its execution only (a menu needs at least two options)."""
    url = t.safe_url(execution_url)
    url = url if url is not None and len(url) <= MAX_BUTTON_URL else None
    if not act:
        return button("Open execution", action_id=ACTION_OPEN, url=url) if url is not None else None
    options = [
        BlockOption(
            value=row_value(verb.name, row.kind, row.event_id, row.execution_index),
            text=PlainTextObject(text=verb.label),
        )
        for verb in MUTATING
        if verb.button_action_id
    ]
    if url is not None:
        options.append(BlockOption(value=_OPEN, text=PlainTextObject(text="Open execution"), url=url))
    return OverflowMenuElement(action_id=ACTION_DIGEST_ROW, options=options)


def _row_block(row: DigestRow, event: Event | None, facts: DigestFacts, link: str | None) -> dict[str, Any]:
    state = RowState.read(row.state)
    where = facts.failure.where if facts.failure is not None else None
    name = t.clip(event.pipeline if event else None, NAME_LEN, default="Code Stream pipeline")
    trigger = event is not None and is_trigger_failure(event)
    head = [f"{'⚠️' if trigger else '❌'} *{name}*", branch(event)]
    if where:
        head.append(t.clip(where, 120))
    elif trigger and event is not None:
        head.append(f"trigger failed: {t.clip(event.message, 150)}")
    lines = [" · ".join(p for p in head if p)]
    if event is not None:
        ref = ExecutionRef.of_event(event, link)
        lines.append(" · ".join(p for p in (subject(event, 120), execution_link(ref) if ref.known else "") if p))
    act = still_failing(state)
    if state is not None:
        outcome = "checking" if state.status == "requested" else state.status
        result = resolution(
            verb=state.verb,
            who=t.user_mention(state.actor_id),
            outcome_status=outcome,
            execution_url=state.execution_url,
            execution_index=state.execution_index,
            final_status=state.final_status,
            reason=state.reason,
        )
        line = result.line
        if state.status == "requested":
            line = f"⏳ {t.clip(state.verb, 20).capitalize()} requested by {t.user_mention(state.actor_id)}"
        lines.append(line)
    return section("\n".join(lines), accessory=_accessory(row, link, act and event is not None))


def _tally(states: list[RowState | None]) -> str:
    fixed = sum(1 for s in states if s is not None and (s.final_status or "").upper() == "COMPLETED")
    failing = sum(1 for s in states if still_failing(s))
    busy = len(states) - fixed - failing
    parts = [f"{failing} still failing"]
    if busy:
        parts.append(f"{busy} in hand")
    if fixed:
        parts.append(f"{fixed} fixed")
    return " · ".join(parts)


def render_digest(
    rows: Sequence[DigestRow],
    *,
    mention: str | None,
    execution_link: Callable[[str | None], str | None],
    now: datetime,
) -> SlackMessage:
    """The digest as it stands: a header counting the failures and the time they took, a row per
    failure, a tally, and "Rerun all failed" while some still fail."""
    first = min((r.added_at for r in rows), default=now)
    last = max((r.added_at for r in rows), default=now)
    span = max(60.0, (last - first).total_seconds())  # "within 1 min" at the least
    count = len(rows)
    title = f"🚨 {count} pipeline {'failure' if count == 1 else 'failures'} within {t.age(span)}"
    lead = " ".join(
        p
        for p in (
            t.mention_syntax(mention),
            "Too many failures at once for one alert each: they are listed here.",
            "Rerun or resume one from its ⋯ menu, or all that still fail at once.",
        )
        if p
    )
    blocks: list[dict[str, Any]] = [header(title), section(lead)]
    states: list[RowState | None] = []
    names: list[str] = []
    for row in rows:
        facts = DigestFacts.read(row.facts)
        event = facts.parsed(row.kind)
        link = execution_link(event.execution_id) if event is not None else None
        blocks.append(_row_block(row, event, facts, link))
        states.append(RowState.read(row.state))
        names.append(t.clip(event.pipeline, 80, default="?") if event is not None else "?")
    blocks.append(context(f"{_tally(states)} · first {t.slack_date(first)} · latest {t.slack_date(last)}"))
    failing = sum(1 for s in states if still_failing(s))
    if failing:
        what = f"{failing} failed {'pipeline' if failing == 1 else 'pipelines'}"
        confirm = confirm_dialog(
            f"Rerun {what}?",
            f"Ask Code Stream to rerun each of the *{failing}* failures in this list that nobody has acted "
            "on, or whose run failed again. Each is checked against your access and runs once.",
            f"Rerun {failing}",
        )
        rerun_all = button(
            f"Rerun all failed ({failing})", action_id=ACTION_RERUN_ALL, value="all", style="danger", confirm=confirm
        )
        blocks.append(actions([rerun_all], block_id=DIGEST_ACTIONS_BLOCK_ID))
    text = fallback_text(t.mention_syntax(mention), title, "; ".join(names[:5]))
    metadata = {"event_type": METADATA_DIGEST_TYPE, "event_payload": {"rows": count}}
    return SlackMessage(text=text, blocks=cap_blocks(blocks), metadata=metadata)


def row_after(outcome: Outcome) -> RowState:
    """A digest row once an action on it has an outcome (what ``render_alert_after`` says of an alert)."""
    return RowState.after(outcome, status="checking" if is_checking(outcome) else None)


def render_rerun_all(actor_id: str, outcomes: Sequence[Outcome]) -> SlackMessage:
    """Said in the digest's thread once "Rerun all" has asked Code Stream for each row."""
    parts = outcome_tally(outcomes, denied="not allowed for you", duplicate="already in hand by someone else")
    total = len(outcomes)
    line = (
        f"🔁 {t.user_mention(actor_id)} asked Code Stream to rerun {total} failed "
        f"{'pipeline' if total == 1 else 'pipelines'}: {', '.join(parts) or 'nothing to do'}. "
        "Each row above shows how its run goes."
    )
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_rerun_all_refused(reason: str) -> SlackMessage:
    line = f"🔁 {reason}"
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_digest_thread_answer() -> SlackMessage:
    """The answer to a reply in a digest's thread (it names no single failure)."""
    return SlackMessage(text=fallback_text(THREAD_ANSWER), blocks=[section(THREAD_ANSWER)])
