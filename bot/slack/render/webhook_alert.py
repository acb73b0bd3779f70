"""The alert of a broken git webhook: **Check again** while it is broken (a Rerun would fail the same
way), then, once it works again, since when and **Rerun the newest push** / **Rerun all N missed
pushes**, each behind a confirm; and the answers of those buttons."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from bot.codestream.models import Event
from bot.core.failures import FailureContext
from bot.core.requests import Outcome
from bot.core.webhook_recovery import Recovery
from bot.slack.render import text as t
from bot.slack.render.base import (
    SlackMessage,
    actions,
    button,
    confirm_dialog,
    context,
    fallback_text,
    outcome_tally,
    section,
    subject,
)
from bot.slack.render.buttons import event_button_value
from bot.slack.render.mute import mute_menu

ACTION_WEBHOOK_CHECK: Final = "codestream_webhook_check"
ACTION_RERUN_NEWEST: Final = "codestream_webhook_rerun_newest"
ACTION_RERUN_MISSED: Final = "codestream_webhook_rerun_missed"
WEBHOOK_ACTIONS_BLOCK_ID: Final = "codestream_webhook_actions"

Which = Literal["newest", "all"]


#: Code Stream's messages for a webhook whose saved API token no longer works.
_TOKEN_TROUBLE: Final = re.compile(r"refresh token|api token|oauth|unauthori[sz]ed|token (is )?(expired|invalid)", re.I)


def trigger_fixers(failure: FailureContext | None) -> str:
    """ "*Who can fix it:* <@U…> · fritz@example.com" (the webhook's last saver, its creator)."""
    if failure is None or not (failure.fixers or failure.fixer_users):
        return ""
    users = failure.fixer_users or ("",) * len(failure.fixers)
    # Each by their Slack user when the bot knows it, else as Code Stream names them.
    names = [
        t.user_mention(user) if user else t.clip(person, 80)
        for person, user in zip(failure.fixers, users, strict=False)
    ]
    return f"\n*Who can fix it:* {' · '.join(dict.fromkeys(names))} (who saved or created the webhook)"


@dataclass(frozen=True)
class _Trigger:
    label: str  # "Git webhook"
    short: str  # "webhook"
    item: str  # what comes through it: "push"
    endpoint: str  # "Git endpoint"
    menu: str  # where Code Stream's UI keeps it


TRIGGERS: Final = {
    "git": _Trigger("Git webhook", "webhook", "push", "Git endpoint", "Code Stream › Triggers › Git"),
    "gerrit": _Trigger("Gerrit listener", "listener", "change", "Gerrit endpoint", "Code Stream › Triggers › Gerrit"),
    "docker": _Trigger(
        "Docker registry webhook",
        "webhook",
        "image push",
        "registry endpoint",
        "Code Stream › Triggers › Docker Registry",
    ),
}


def trigger_fix(event: Event) -> str:
    """What to do about a trigger failure, by its cause (mrkdwn, escaped)."""
    kind = TRIGGERS.get(event.kind, TRIGGERS["git"])
    where = " · ".join(t.clip(p, 60) for p in (event.project, event.repository, event.branch) if p)
    hook = f"the {kind.short} for {where}" if where else f"the {kind.short}"
    noun = kind.label[0].lower() + kind.label[1:]  # "git webhook"
    if _TOKEN_TROUBLE.search(event.message or ""):
        return (
            f"*What happened:* the API token saved in the {noun} expired or was revoked, so Code Stream "
            f"received the {kind.item} but could not start the pipeline; every {kind.item} fails the same way "
            "until it is fixed.\n"
            f"*To fix:* {kind.menu} › {kind.short.capitalize()}s › edit {hook} › save a new API token. "
            f"If the {kind.endpoint} itself was changed, delete the {kind.short} and create it again."
        )
    return (
        f"*What to do:* Code Stream received the {kind.item} but did not start the pipeline (its message is "
        f"below): check the {noun} ({hook}) and its {kind.endpoint} in {kind.menu}."
    )


def _webhook_name(recovery: Recovery | None, event: Event) -> str:
    name = recovery.webhook if recovery is not None else None
    return f"*{t.clip(name, 60)}*" if name else f"the webhook of {t.clip(event.pipeline, 60, default='this pipeline')}"


def recovery_section(event: Event, recovery: Recovery, missed: int) -> dict[str, Any]:
    """ "✅ The webhook works again since …" and how that was seen."""
    since = f" since {t.slack_date(recovery.since)}" if recovery.since is not None else ""
    if recovery.how == "push":
        how = "a push through it started its pipeline"
    else:
        by = f" by {t.clip(recovery.saved_by, 80)}" if recovery.saved_by else ""
        how = f"it was saved again{by} after the last failure"
    if missed == 0:
        pushes = "Every push it missed has been rerun"
    elif recovery.how == "push":
        pushes = (
            f"{_pushes(missed)} did not run while it was broken; a newer push has run since, so rerun "
            "them only if each commit needs its own run (oldest first)"
        )
    else:
        pushes = f"{_pushes(missed)} did not run while it was broken: rerun {'it' if missed == 1 else 'them'} here"
    return section(f"✅ {_webhook_name(recovery, event)} *works again*{since} ({how}). {pushes}.")


def _pushes(n: int) -> str:
    return "1 push" if n == 1 else f"{n} pushes"


def webhook_actions(event: Event, recovery: Recovery | None, missed: int) -> dict[str, Any] | None:
    """Check again while broken; once working, Rerun the newest push / Rerun all N missed pushes."""
    value = event_button_value(event)
    if value is None:
        return None
    menu = mute_menu(event)
    muting = [menu] if menu is not None else []
    if recovery is None or not recovery.working:
        check = button("🔄 Check again", action_id=ACTION_WEBHOOK_CHECK, value=value)
        return actions([check, *muting], block_id=WEBHOOK_ACTIONS_BLOCK_ID)
    pipeline = t.clip(event.pipeline, 60, default="the pipeline")
    buttons: list[Any] = []
    if missed and recovery.how != "push":  # nothing newer ran: the newest push holds the others
        body = (
            f"Ask Code Stream to rerun *{pipeline}* for the newest push that did not run "
            "(it holds the earlier commits)?"
        )
        confirm = confirm_dialog("Rerun the newest push?", body, "Rerun")
        buttons.append(
            button(
                "🔁 Rerun the newest push", action_id=ACTION_RERUN_NEWEST, value=value, style="primary", confirm=confirm
            )
        )
    if missed > 1 or (missed == 1 and recovery.how == "push"):
        newer = " A newer push has already run it since the fix." if recovery.how == "push" else ""
        body = (
            f"Ask Code Stream to rerun *{pipeline}* once for each of the {_pushes(missed)} that did not run, "
            f"oldest first, one after the other?{newer}"
        )
        label = "Rerun the missed push" if missed == 1 else f"Rerun the {missed} missed pushes"
        confirm = confirm_dialog(f"Rerun {_pushes(missed)}?", body, f"Rerun {missed}")
        buttons.append(button(label, action_id=ACTION_RERUN_MISSED, value=value, confirm=confirm))
    elements = [*buttons, *muting]
    return actions(elements, block_id=WEBHOOK_ACTIONS_BLOCK_ID) if elements else None


def render_still_broken(event: Event, recovery: Recovery) -> SlackMessage:
    """The answer of Check again while the webhook is still broken (to the person who asked)."""
    when = f" ({t.slack_date(recovery.latest_failure_at)})" if recovery.latest_failure_at is not None else ""
    why = t.clip(recovery.latest_failure, 300, default="no message")
    line = (
        f"🔌 {_webhook_name(recovery, event)} is still broken: the newest push through it{when} did not start "
        f"its pipeline ({why}). Rerunning would fail the same way; once it is saved with a new API token, "
        "*Check again*."
    )
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_works_again(event: Event, recovery: Recovery, missed: int) -> SlackMessage:
    line = recovery_section(event, recovery, missed)["text"]["text"]
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_rerunning_missed(actor_id: str, count: int, total: int) -> SlackMessage:
    """In the alert's thread: who reruns which of the missed pushes."""
    which = (
        "the newest missed push"
        if count == 1 and total > 1
        else ("1 missed push" if count == 1 else f"{count} missed pushes")
    )
    line = f"🔁 {t.user_mention(actor_id)} is rerunning {which}, newest first."
    return SlackMessage(text=fallback_text(line), blocks=[context(line)])


def render_missed_outcomes(actor_id: str, outcomes: Sequence[Outcome]) -> SlackMessage:
    """In the alert's thread once every rerun has an outcome: what Code Stream did, counted."""
    parts = outcome_tally(outcomes, denied="not allowed for them", duplicate="already rerun")
    line = f"🔁 Missed pushes rerun by {t.user_mention(actor_id)}: {', '.join(parts) or 'nothing to do'}."
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_not_allowed(denied: Sequence[Outcome]) -> SlackMessage:
    """To the person only: the pushes their access did not let them rerun (left alone), and why."""
    lines = [f"You may not rerun {len(denied)} of the missed pushes; they were left alone:"]
    for outcome in denied[:10]:
        what = subject(outcome.event, 80) if outcome.event is not None else t.code(outcome.request.event_id, 40)
        why = t.clip(str(outcome.error), 200) if outcome.error is not None else "not allowed"
        lines.append(f"• {what}: {why}")
    if len(denied) > 10:
        lines.append(f"…and {len(denied) - 10} more")
    text = "\n".join(lines)
    return SlackMessage(text=fallback_text(text), blocks=[section(text)])


def render_in_hand(held_by: str) -> SlackMessage:
    by = f" by {t.user_mention(held_by)}" if held_by.isalnum() else ""
    line = f"🔁 Already in hand: the missed pushes are being rerun{by}. Each one's summary shows in the thread."
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])


def render_nothing_to_rerun(recovery: Recovery, which: Which) -> SlackMessage:
    """Why a "Rerun missed" click sent nothing: broken again, nothing left, or a newer push ran."""
    if not recovery.working:
        line = "🔌 The webhook is broken again: nothing was rerun. The alert offers *Check again*."
    elif which == "newest" and recovery.how == "push":
        line = "🔁 A newer push has already run the pipeline since the fix: nothing was rerun (it would be older)."
    else:
        line = "🔁 Nothing left to rerun: every push it missed has been rerun."
    return SlackMessage(text=fallback_text(line), blocks=[section(line)])
