"""Is a broken git webhook working again, and which pushes did it miss? Read from Code Stream and
the store, Slack-free.

A webhook whose pushes did not start their pipeline (a trigger failure: its saved API token
expired or was revoked, most often) works again once a later push through it started its
pipeline, or once it was saved after the newest failure (a new token) and no push failed since.
Until then rerunning its pushes would fail the same way, so its alert offers **Check again**
instead; once it works, the pushes it missed can be rerun, each through the same ``perform()`` as
any rerun."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from bot.codestream.client import CodeStreamClient
from bot.codestream.fields import parse_time
from bot.codestream.models import Event, EventKind, GitEvent
from bot.codestream.webhooks import MAX_WEBHOOKS, GitWebhook
from bot.core.batch_hold import batch_hold
from bot.store import AlertRecord, Store

#: Recent git events read to find the pushes through a webhook (newest first).
RECENT_EVENTS: Final = 200


@dataclass(frozen=True)
class Recovery:
    """What a check found: ``working`` since ``since``, ``how`` (a push started its pipeline, or
    the webhook was saved again by ``saved_by``); while broken, the newest failure's message."""

    working: bool
    since: datetime | None = None
    how: Literal["push", "saved"] | None = None
    saved_by: str | None = None
    webhook: str | None = None
    latest_failure: str | None = None
    latest_failure_at: datetime | None = None


def same_trigger(a: Event, b: Event) -> bool:
    """Both came through one webhook: the same ``serverWebhookId``, else the same project, repo,
    branch and pipeline."""
    if not isinstance(a, GitEvent) or not isinstance(b, GitEvent):
        return False
    if a.server_webhook_id and b.server_webhook_id:
        return a.server_webhook_id == b.server_webhook_id
    return (a.project, a.repository, a.branch, a.pipeline) == (b.project, b.repository, b.branch, b.pipeline)


def _when(event: Event) -> datetime | None:
    """When the push came in. Not its last update: a rerun of a missed push updates it, which
    says nothing about the webhook."""
    return parse_time(event.create_time_micros) or parse_time(event.created_at) or event.updated


def _order(event: Event) -> float:
    when = _when(event)
    return when.timestamp() if when is not None else 0.0


@dataclass(frozen=True)
class Assessment:
    """A broken webhook's alert, judged now: whether the webhook works (``recovery``) and the
    pushes it missed that no rerun has reached yet, oldest first."""

    recovery: Recovery
    missed: list[str]


@dataclass(frozen=True)
class WebhookRecovery:
    client: CodeStreamClient
    store: Store

    def hold(self, alert: AlertRecord, user_id: str) -> AbstractAsyncContextManager[str | None]:
        """One rerun of an alert's missed pushes at a time, on any replica (``batch_hold``)."""
        return batch_hold(self.store, f"webhook-missed:{alert.channel_id}:{alert.ts}", user_id)

    async def alert_at(self, channel: str, ts: str) -> AlertRecord | None:
        """The alert posted as ``ts`` (a webhook's alert, when its event is a trigger failure)."""
        return await self.store.alerts.find_by_message(channel, ts)

    async def read(self, kind: EventKind, event_id: str) -> Event:
        """The event as Code Stream has it now; raises CodeStreamError."""
        return await self.client.get_event(kind, event_id)

    async def assess(self, event: Event, alert: AlertRecord) -> Assessment:
        """Whether the webhook ``event`` (the alert's trigger failure) came through works again,
        and which of its pushes still wait for a rerun. Raises CodeStreamError when Code Stream
        cannot be read.

        The pushes it missed are those its alert counts (its own and the trigger failures in its
        thread) and those the recent events show failing through it (muted or held ones too),
        less any that ran since or that the bot sent a rerun for. It works again once a push made
        after the newest of them started its pipeline, or it was saved after the newest of them."""
        page = await self.client.list_events("git", orderby="updatedAt desc", top=RECENT_EVENTS)
        webhook, ids = await self._webhook(event)
        through = [e for e in page.events if e.id == event.id or _through(e, event, ids)]
        rows = [alert, *await self.store.alerts.in_thread(alert.channel_id, alert.ts)]
        listed = {e.id: e for e in through if e.id}
        pushed: dict[str, datetime | None] = {
            r.event_id: r.created_at for r in rows if r.kind == "git" and r.execution_index is None
        }
        for e in through:
            if e.id and e.trigger_failed:
                pushed.setdefault(e.id, _when(e))
        failed_at = max(
            (t for t in (_when(listed[i]) if i in listed else at for i, at in pushed.items()) if t is not None),
            default=_when(event),
        )
        sent = await self.store.actions.may_have_run("git", list(pushed))
        still = [i for i in pushed if i not in sent and (i not in listed or listed[i].trigger_failed)]
        missed = sorted(still, key=lambda i: _stamp(_when(listed[i]) if i in listed else pushed[i]))
        name = webhook.name if webhook is not None else None
        started = [e for e in through if e.id not in pushed and not e.trigger_failed and _after(_when(e), failed_at)]
        if started:
            first = min(started, key=_order)
            return Assessment(Recovery(working=True, since=_when(first), how="push", webhook=name), missed)
        saved = _saved_at(webhook)
        if webhook is not None and saved is not None and _after(saved, failed_at):
            who = webhook.updated_by or webhook.created_by
            return Assessment(Recovery(working=True, since=saved, how="saved", saved_by=who, webhook=name), missed)
        newest = max((e for e in through if e.trigger_failed), key=_order, default=event)
        broken = Recovery(working=False, webhook=name, latest_failure=newest.message, latest_failure_at=_when(newest))
        return Assessment(broken, missed)

    async def _webhook(self, event: Event) -> tuple[GitWebhook | None, set[str]]:
        """The webhook ``event`` came through, and the webhook ids its pushes carry: its own, and
        when it was deleted and created again (the fix for a changed Git endpoint), the new one's
        — found by project, repository, branch and pipeline."""
        if not isinstance(event, GitEvent):
            return None, set()
        clause = f"project eq '{event.project.replace(chr(39), chr(39) * 2)}'" if event.project else None
        hooks = await self.client.list_git_webhooks(filter=clause, top=MAX_WEBHOOKS)
        ids = {event.server_webhook_id} if event.server_webhook_id else set()
        same = [h for h in hooks if event.server_webhook_id and h.server_webhook_id == event.server_webhook_id]
        if not same:  # gone (recreated), or the event names none: the one for its repo and branch
            same = [
                h
                for h in hooks
                if (h.repo_name, h.branch_name, h.pipeline) == (event.repository, event.branch, event.pipeline)
            ]
        ids |= {h.server_webhook_id for h in same if h.server_webhook_id}
        return (same[0] if same else None), ids


def _through(candidate: Event, event: Event, ids: set[str]) -> bool:
    """``candidate`` came through the webhook of ``event`` (one of ``ids``, or without ids the same
    project, repository, branch and pipeline)."""
    if not isinstance(candidate, GitEvent) or not isinstance(event, GitEvent):
        return False
    if candidate.server_webhook_id and ids:
        return candidate.server_webhook_id in ids
    return same_trigger(candidate, event)


def _stamp(when: datetime | None) -> float:
    return when.timestamp() if when is not None else 0.0


def _saved_at(webhook: GitWebhook | None) -> datetime | None:
    if webhook is None:
        return None
    return parse_time(webhook.update_time_micros) or parse_time(webhook.updated_at)


def _after(when: datetime | None, then: datetime | None) -> bool:
    return when is not None and (then is None or when > then)
