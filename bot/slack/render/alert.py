"""Renderers of the failure alert (and its later states) and of the list of failed events.

Import the public names from :mod:`bot.slack.render.messages`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bot.codestream.models import FAILED_STATUSES, TERMINAL_STATUSES, Event
from bot.core.failures import FailureContext
from bot.core.requests import Outcome
from bot.core.verbs import MUTATING, VERBS, verb_spec
from bot.core.webhook_recovery import Recovery
from bot.slack.render import text as t
from bot.slack.render.base import (
    NAME_LEN,
    ExecutionRef,
    SlackMessage,
    actions,
    branch,
    cap_blocks,
    context,
    event_fields,
    event_metadata,
    event_ref,
    execution_link,
    fallback_text,
    header,
    kind_label,
    message_section,
    section,
    status_text,
    subject,
    text_facts,
    verb_title,
)
from bot.slack.render.buttons import event_button_value, listed_button_value, open_button, verb_button
from bot.slack.render.failure import failure_section, failure_text
from bot.slack.render.mute import mute_menu
from bot.slack.render.webhook_alert import TRIGGERS, recovery_section, trigger_fix, trigger_fixers, webhook_actions

MAX_LISTED: Final = 10
ALERT_ACTIONS_BLOCK_ID: Final = "codestream_alert_actions"


def _pipeline(event: Event) -> str:
    return t.clip(event.pipeline, NAME_LEN, default="Code Stream pipeline")


def is_trigger_failure(event: Event) -> bool:
    """The event never started a run: Code Stream set ``message`` and there is no execution."""
    return event.trigger_failed


def _alert_header(event: Event, failure: FailureContext | None = None) -> str:
    if is_trigger_failure(event):
        if failure is not None and failure.webhook:
            label = TRIGGERS.get(event.kind, TRIGGERS["git"]).label
            return f"🔌 {label} {t.clip(failure.webhook, 60)} is not starting {_pipeline(event)}"
        return f"⚠️ {_pipeline(event)}: trigger failed"
    return f"❌ {_pipeline(event)} failed"


def _metadata(event: Event) -> dict[str, Any] | None:
    if event_button_value(event) is None or event.id is None:
        return None
    return event_metadata(event.kind, event.id.strip().lower())


def alert_actions(event: Event, execution_url: str | None, *, act: bool = True) -> dict[str, Any] | None:
    """Rerun (primary) and Resume, each behind a confirm dialog, plus a link to the execution.
    ``act=False``: the link only (a series' alert: newer failures are acted on in its thread)."""
    value = event_button_value(event) if act else None
    buttons = [verb_button(event, verb, value) for verb in MUTATING if verb.button_action_id] if value else []
    link = open_button(execution_url)
    elements: list[Any] = [*buttons, link] if link is not None else list(buttons)
    menu = mute_menu(event) if act else None
    if menu is not None:
        elements.append(menu)
    return actions(elements, block_id=ALERT_ACTIONS_BLOCK_ID) if elements else None


def _alert_body(
    event: Event,
    ref: ExecutionRef,
    *,
    title: str,
    mention: str,
    now: datetime,
    failure: FailureContext | None = None,
    explain: bool = True,
) -> list[dict[str, Any]]:
    """``explain``: a trigger failure's fix and who can make it (not on the repeats in its
    thread: the alert says it once, and mentions them once)."""
    lead = " ".join(p for p in (mention, f"*{subject(event)}*") if p)
    blocks = [header(title), section(lead)]
    fields = event_fields(event, ref, owner=True)
    if fields:
        blocks.append(section("", fields=fields))
    why = failure_section(failure)
    if why is not None:
        blocks.append(why)
    if explain and is_trigger_failure(event):
        blocks.append(section(trigger_fix(event) + trigger_fixers(failure)))
    message = message_section(event)
    if message is not None:
        blocks.append(message)
    blocks.append(context(f"{event_ref(event.kind, event.id)} · {t.slack_date(event.updated or now)}"))
    return blocks


def _alert_text(title: str, event: Event, ref: ExecutionRef, *extra: str) -> str:
    repo = " ".join(p for p in (t.clip(event.repository, 60), t.clip(event.short_commit, 7)) if p)
    return fallback_text(title, text_facts(event, ref), repo, *extra)


def render_alert(
    event: Event,
    *,
    execution_url: str | None,
    execution_status: str | None = None,
    mention: str | None = None,
    now: datetime,
    failure: FailureContext | None = None,
    author: str | None = None,
    repeat: bool = False,
    repeats: int = 0,
    recovery: Recovery | None = None,
) -> SlackMessage:
    """The failure alert: what failed, where, who pushed it (``author``, a Slack user id, is
    mentioned), why (the failed stage and task, and the first lines
    of the error, when Code Stream says), and buttons to rerun or resume it. A trigger failure
    (its webhook broken) has Check again instead, and once ``recovery`` says the webhook works,
    buttons to rerun the pushes it missed."""
    ref = ExecutionRef(
        url=execution_url,
        name=event.pipeline,
        index=event.execution_index,
        status=execution_status or event.execution_status,
    )
    who = " ".join(
        dict.fromkeys(p for p in (t.mention_syntax(mention), t.mention_syntax(author) if author else "") if p)
    )  # a route mentioning the author already: once
    title = _alert_header(event, failure)
    trigger = is_trigger_failure(event)
    if repeat and trigger:  # another push the broken trigger did not run
        title = f"🔌 did not run again: {t.clip(event.pipeline, 80, default='the pipeline')}"
    elif repeat:  # in the thread of its series' open alert
        number = f" #{event.execution_index}" if event.execution_index is not None else ""
        where = f", {t.clip(failure.where, 80)}" if failure is not None and failure.where else ""
        title = f"🔁 failed again: {t.clip(event.pipeline, 80, default='the pipeline')}{number}{where}"
    elif trigger and recovery is not None and recovery.working:  # its webhook works again
        label = TRIGGERS.get(event.kind, TRIGGERS["git"]).label
        name = f" {t.clip(recovery.webhook, 60)}" if recovery.webhook else ""
        missed = "1 push" if repeats == 0 else f"{repeats + 1} pushes"
        title = f"✅ {label}{name} works again · {missed} of {_pipeline(event)} did not run"
        if repeats < 0:  # every push it missed was rerun
            title = f"✅ {label}{name} works again · {_pipeline(event)}: every push it missed was rerun"
    elif repeats > 0:  # the series' alert, counting the failures in its thread
        title = f"{title} · {repeats + 1} pushes did not run" if trigger else f"{title} · {repeats + 1} failures"
    working = recovery is not None and recovery.working  # the fix is made: its steps are not shown
    blocks = _alert_body(
        event, ref, title=title, mention=who, now=now, failure=failure, explain=not (repeat or working)
    )
    if trigger and not repeat:
        if recovery is not None and recovery.working:
            blocks.insert(-1, recovery_section(event, recovery, repeats + 1))
        if repeats > 0:
            more = "1 more push" if repeats == 1 else f"{repeats} more pushes"
            blocks.insert(-1, context(f"🔌 {more} that did not run, listed in the thread"))
    elif repeats > 0 and not repeat:
        more = "1 more failure" if repeats == 1 else f"{repeats} more failures"
        series = f"{t.clip(event.pipeline, 80)} on {t.clip(event.branch, 80)}"
        blocks.insert(-1, context(f"🔁 {more} of {series} in the thread: rerun or resume the newest one there"))
    if trigger and event.kind == "git":  # a rerun would fail the same way until the webhook works
        buttons = None if repeat else webhook_actions(event, recovery, repeats + 1)
    else:
        buttons = alert_actions(event, execution_url, act=repeats == 0 or repeat)
    if buttons is not None:
        blocks.append(buttons)
    text = fallback_text(who, _alert_text(title, event, ref, failure_text(failure)))
    return SlackMessage(text=text, blocks=cap_blocks(blocks), metadata=_metadata(event))


def render_alert_in_progress(
    event: Event, *, verb: str, actor_id: str, execution_url: str | None, now: datetime
) -> SlackMessage:
    """The alert once someone acted: the buttons give way to who asked for what, and when."""
    ref = ExecutionRef.of_event(event, execution_url)
    title = _alert_header(event)
    blocks = _alert_body(event, ref, title=title, mention="", now=now)
    spec = verb_spec(verb)
    emoji = spec.emoji if spec is not None else "🔁"
    line = f"{emoji} {verb_title(verb)} requested by {t.user_mention(actor_id)}"
    blocks.append(context(f"{line} · {t.slack_date(now)}"))
    return SlackMessage(text=_alert_text(title, event, ref, line), blocks=cap_blocks(blocks), metadata=_metadata(event))


@dataclass(frozen=True)
class Resolution:
    line: str  # escaped mrkdwn
    retry: bool  # put the buttons back
    fixed: bool = False


def _started_resolution(run: str, run_title: str, who: str, final_status: str | None) -> Resolution:
    status = (final_status or "").strip().upper()
    shown = status_text(status)
    if status == "COMPLETED":
        return Resolution(f"✅ Fixed by {run} by {who}", retry=False, fixed=True)
    if status == "CANCELED":
        return Resolution(f"⛔ {run_title} by {who} was canceled", retry=True)
    if status in FAILED_STATUSES:
        return Resolution(f"❌ {run_title} by {who} failed again ({shown})", retry=True)
    if status in TERMINAL_STATUSES:
        return Resolution(f"⚠️ {run_title} by {who} ended {shown}", retry=True)
    return Resolution(f"⏳ {run_title} by {who} is {shown or 'running'}", retry=False)


def resolution(
    *,
    verb: str,
    who: str,
    outcome_status: str,
    execution_url: str | None,
    execution_index: int | None,
    final_status: str | None,
    reason: str | None,
) -> Resolution:
    """The one line that says how the action on an alert came out."""
    title = verb_title(verb)
    if outcome_status == "started":
        number = f" #{execution_index}" if execution_index is not None else ""
        run = t.link(execution_url, f"{verb}{number}")
        return _started_resolution(run, t.link(execution_url, f"{title}{number}"), who, final_status)
    because = f": {t.clip(reason, 300)}" if reason and reason.strip() else ""
    if outcome_status == "checking":  # unknown, still being read back: no buttons meanwhile
        return Resolution(f"⏳ {title} by {who} sent — checking whether it started", False)
    if outcome_status == "unknown":  # not confirmed: no buttons invite a second run
        return Resolution(f"⚠️ {title} by {who} may have started — check the execution before trying again", False)
    if outcome_status == "not_started":
        return Resolution(f"↩️ {title} by {who} did not start{because} — safe to try again", True)
    if outcome_status == "denied":
        return Resolution(f"🚫 {title} by {who} was denied{because}", True)
    if outcome_status == "duplicate":
        return Resolution(f"🔁 {title} already requested; {who} was pointed to it", False)
    return Resolution(f"❌ {title} by {who} failed{because}", True)


def render_alert_resolved(
    event: Event,
    *,
    verb: str,
    actor_id: str,
    outcome_status: str,
    execution_url: str | None,
    execution_index: int | None,
    final_status: str | None,
    now: datetime,
    reason: str | None = None,
    failure: FailureContext | None = None,
) -> SlackMessage:
    """The alert after the action (and its follow-through): fixed, failed again (with why, when
    Code Stream says), or try again."""
    result = resolution(
        verb=verb,
        who=t.user_mention(actor_id),
        outcome_status=outcome_status,
        execution_url=execution_url,
        execution_index=execution_index,
        final_status=final_status,
        reason=reason,
    )
    ref = ExecutionRef(
        url=execution_url if outcome_status == "started" else None,
        name=event.pipeline,
        index=execution_index if outcome_status == "started" and execution_index is not None else event.execution_index,
        status=final_status or event.execution_status,
    )
    title = f"✅ {_pipeline(event)} fixed" if result.fixed else _alert_header(event)
    why = None if result.fixed else failure
    blocks = _alert_body(event, ref, title=title, mention="", now=now, failure=why)
    blocks.append(section(result.line))
    buttons = alert_actions(event, execution_url) if result.retry else None
    if buttons is not None:
        blocks.append(buttons)
    text = _alert_text(title, event, ref, t.one_line(result.line), failure_text(why))
    return SlackMessage(text=text, blocks=cap_blocks(blocks), metadata=_metadata(event))


def is_checking(outcome: Outcome) -> bool:
    """An unknown outcome the bot is still reading back: this message will be updated."""
    return outcome.status == "unknown" and not outcome.settled_late


def render_alert_after(outcome: Outcome, *, now: datetime) -> SlackMessage | None:
    """The alert once an action on it has an outcome; None when there is no event to draw."""
    if outcome.event is None:
        return None
    reason = getattr(outcome.error, "user_message", None) if outcome.error else None
    return render_alert_resolved(
        outcome.event,
        verb=outcome.request.verb,
        actor_id=outcome.request.actor.user_id,
        outcome_status="checking" if is_checking(outcome) else outcome.status,
        execution_url=outcome.execution_url,
        execution_index=outcome.event.execution_index if outcome.status == "started" else None,
        final_status=None,
        now=now,
        reason=reason if outcome.status != "not_started" or not outcome.settled_late else None,
    )


# --- the list of failed events -----------------------------------------------------------------


def _list_item(event: Event, execution_url: str | None, now: datetime, muted: str | None = None) -> dict[str, Any]:
    ref = ExecutionRef.of_event(event, execution_url)
    facts = [branch(event), t.clip(event.repository, NAME_LEN)]
    if ref.known:
        facts.append(f"{execution_link(ref)} {status_text(ref.status)}".strip())
    if event.updated is not None:
        facts.append(f"{t.age(t.seconds_between(now, event.updated))} ago")
    lines = [f"*{subject(event)}*", " · ".join(f for f in facts if f)]
    if is_trigger_failure(event):
        lines.append(f"⚠️ trigger failed: {t.clip(event.message, 300)}")
    if muted is not None:
        lines.append(f"🔕 muted: {t.clip(muted, 150)} — not alerted")
    lines.append(f"_{event_ref(event.kind, event.id)}_")
    value = event_button_value(event)
    accessory = verb_button(event, VERBS["rerun"], value) if value is not None else None
    return section("\n".join(lines), accessory=accessory)


def execution_urls(events: Sequence[Event], execution_link: Callable[[str | None], str | None]) -> dict[str, str]:
    """Event id -> its execution's page, for the events that have one."""
    return {e.id: url for e in events if e.id and (url := execution_link(e.execution_id))}


def render_event_list(
    events: list[Event], *, execution_urls: dict[str, str], now: datetime, muted: dict[str, str] | None = None
) -> SlackMessage:
    """Recent failed events (at most ten shown), each with a Rerun button."""
    if not events:
        return SlackMessage(text="No failed events 🎉", blocks=[section("No failed events 🎉")])
    shown = events[:MAX_LISTED]
    blocks = [header(f"Recent failed Code Stream events ({len(events)})")]
    blocks.extend(_list_item(e, execution_urls.get(e.id or ""), now, (muted or {}).get(e.id or "")) for e in shown)
    more = len(events) - len(shown)
    if more > 0:
        blocks.append(context(f"…and {more} more not shown. Narrow it down with `/codestream list git|gerrit|docker`."))
    kinds = sorted({kind_label(e.kind) for e in shown})
    subjects = "; ".join(subject(e, 60) for e in shown[:3])
    text = fallback_text(f"{len(events)} failed {'/'.join(kinds)} events", subjects, f"{more} more" if more else "")
    return SlackMessage(text=text, blocks=cap_blocks(blocks))


def home_item(event: Event, execution_url: str | None, now: datetime) -> list[dict[str, Any]]:
    """One failure on the App Home: what failed, then Rerun and Resume (behind their confirm
    dialogs) and the execution's link. No mute menu: muting is said in the alert's thread."""
    item = _list_item(event, execution_url, now)
    item.pop("accessory", None)
    value = listed_button_value(event)
    verbs = [verb for verb in MUTATING if verb.button_action_id] if value else []
    elements: list[Any] = [verb_button(event, verb, value) for verb in verbs if value]
    link = open_button(execution_url)
    if link is not None:
        elements.append(link)
    return [item, actions(elements)] if elements else [item]
