"""Why a failure failed, for its alert: one read of the failed execution, bounded and cached, so
a re-post, a retry or another kind's cycle never reads it again. A read that fails, or a shape
that says nothing, means an alert without details — never a delayed or missing alert."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event
from bot.codestream.webhooks import MAX_WEBHOOKS, GitWebhook
from bot.core.failures import FailureContext, failure_context

log = logging.getLogger("bot.core.watcher")

CACHE_SIZE: Final = 2048  # executions remembered (a failed execution does not change)
WEBHOOKS_TTL: Final = 300.0  # the git webhooks are read again after this many seconds


class FailureDetails:
    def __init__(self, client: CodeStreamClient, *, size: int = CACHE_SIZE) -> None:
        self.client = client
        self.size = size
        self.reads = 0  # execution reads made (the benchmark's steady state must not grow)
        self._known: OrderedDict[str, FailureContext | None] = OrderedDict()
        self._webhooks: dict[str, GitWebhook] = {}
        self._webhooks_read_at: float | None = None

    async def fixers_of(self, event: Event) -> FailureContext | None:
        """A trigger failure: who can fix its git webhook (who last saved it, who created it),
        matched by the webhook id the event names; None when that cannot be read."""
        webhook_id = getattr(event, "server_webhook_id", None)
        if not webhook_id:
            return None
        now = time.monotonic()
        if self._webhooks_read_at is None or now - self._webhooks_read_at > WEBHOOKS_TTL:
            self._webhooks_read_at = now  # a failed read is not tried again before the TTL either
            try:
                hooks = await self.client.list_git_webhooks(top=MAX_WEBHOOKS, retry=False)
            except CodeStreamError as exc:
                log.info("watcher: webhooks unreadable", extra={"error_class": type(exc).__name__})
                return None
            self._webhooks = {h.server_webhook_id: h for h in hooks if h.server_webhook_id}
        hook = self._webhooks.get(webhook_id)
        if hook is None:
            return None
        people = tuple(dict.fromkeys(p for p in (hook.updated_by, hook.created_by) if p))
        return FailureContext(fixers=people, webhook=hook.name)

    async def of(self, event: Event) -> FailureContext | None:
        """The failed stage, task and error of the event's execution; None without one (a
        trigger failure: the alert shows the event's own message)."""
        execution_id = event.execution_id
        if event.is_failure and not execution_id:
            return await self.fixers_of(event)
        if not event.is_failure or not execution_id:
            return None
        if execution_id in self._known:
            self._known.move_to_end(execution_id)
            return self._known[execution_id]
        self.reads += 1
        try:
            # One attempt: the alert must not wait on retries for its details.
            execution = await self.client.get_execution(execution_id, retry=False)
        except CodeStreamError as exc:
            log.info(
                "watcher: no failure details for the alert (execution read failed)",
                extra={"execution_id": execution_id, "error_class": type(exc).__name__},
            )
            return None
        context = failure_context(execution)
        self._known[execution_id] = context
        while len(self._known) > self.size:
            self._known.popitem(last=False)
        return context
