"""How each git webhook is doing, for ``/codestream webhooks``: whether the last push through it
started its pipeline, how many recent pushes did not (trigger failures: the webhook's API token
expired or was revoked, most often), the last failure's message, and how long ago it was saved.
A webhook not saved for ``warn_days`` is flagged "token may expire soon": a heuristic from the
usual lifetime of vRA API tokens (90 days), not something Code Stream says. Seeing a webhook
follows the show rules of its events (kind git, its project and pipeline)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.fields import parse_time
from bot.codestream.models import Event, GitEvent
from bot.codestream.webhooks import GitWebhook
from bot.core.access import AccessPolicy, Scope, Viewer

#: Recent git events read to judge the webhooks (newest first).
RECENT_EVENTS: Final = 200


@dataclass(frozen=True)
class WebhookHealth:
    webhook: GitWebhook
    last_event: Event | None  # the newest push through it, among the recent events
    failures: int  # recent pushes that did not start the pipeline
    last_failure: str | None  # the newest trigger failure's message
    last_failure_at: datetime | None  # and when Code Stream recorded it
    saved_days: float | None  # since it was last saved (its API token's age, roughly)
    may_expire: bool  # not saved for the warning's days

    @property
    def broken(self) -> bool:
        """The newest push through it did not start its pipeline."""
        return self.last_event is not None and self.last_event.trigger_failed


@dataclass(frozen=True)
class WebhookBoard:
    client: CodeStreamClient
    access: AccessPolicy
    warn_days: float = 80.0  # 0: never flagged

    async def failing_since(self, since: datetime, now: datetime) -> list[WebhookHealth]:
        """Every webhook with a trigger failure recorded since ``since`` (for ``check``: no viewer)."""
        found = await self.health(None, project=None, now=now)
        return [h for h in found if h.last_failure_at is not None and h.last_failure_at >= since]

    async def health(self, viewer: Viewer | None, *, project: str | None, now: datetime) -> list[WebhookHealth]:
        """The webhooks ``viewer`` may see (in ``project``, when given), broken ones first; raises
        CodeStreamError when Code Stream cannot be read."""
        clause = f"project eq '{project.replace(chr(39), chr(39) * 2)}'" if project else None
        webhooks = await self.client.list_git_webhooks(filter=clause)
        page = await self.client.list_events("git", orderby="updatedAt desc", top=RECENT_EVENTS)
        pushes: dict[str, list[Event]] = defaultdict(list)
        for event in page.events:
            if isinstance(event, GitEvent) and event.server_webhook_id:
                pushes[event.server_webhook_id].append(event)
        found = []
        for webhook in webhooks:
            scope = Scope("git", webhook.project, webhook.pipeline)
            if viewer is None or await self.access.may_see(viewer, scope):
                found.append(self._judge(webhook, pushes.get(webhook.server_webhook_id or "", []), now))
        return sorted(found, key=lambda h: (not h.broken, -h.failures, h.webhook.name or ""))

    def _judge(self, webhook: GitWebhook, events: list[Event], now: datetime) -> WebhookHealth:
        failed = [e for e in events if e.trigger_failed]
        saved = parse_time(webhook.update_time_micros or webhook.updated_at)
        days = (now - saved).total_seconds() / 86400 if saved is not None else None
        return WebhookHealth(
            webhook=webhook,
            last_event=events[0] if events else None,
            failures=len(failed),
            last_failure=failed[0].message if failed else None,
            last_failure_at=failed[0].updated if failed else None,
            saved_days=days,
            may_expire=bool(self.warn_days) and days is not None and days >= self.warn_days,
        )
