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
from bot.codestream.models import DockerRegistryEvent, Event, GerritEvent
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
        """A trigger failure: who can fix its trigger (who last saved it, who created it) — the
        git webhook the event names by id, the Gerrit listener it names, or the Docker registry
        webhook of its repository and pipeline; None when that cannot be read."""
        try:
            if isinstance(event, GerritEvent):
                return await self._gerrit_fixers(event)
            if isinstance(event, DockerRegistryEvent):
                return await self._registry_fixers(event)
        except CodeStreamError as exc:
            log.info("watcher: trigger unreadable", extra={"error_class": type(exc).__name__})
            return None
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
        return None if hook is None else _fixers(hook.name, hook.updated_by, hook.created_by)

    async def _gerrit_fixers(self, event: GerritEvent) -> FailureContext | None:
        if not event.listener or not event.project:
            return None
        listener = await self.client.get_gerrit_listener(event.project, event.listener, retry=False)
        return _fixers(listener.name, listener.updated_by, listener.created_by)

    async def _registry_fixers(self, event: DockerRegistryEvent) -> FailureContext | None:
        if not event.project:
            return None
        clause = f"project eq '{event.project.replace(chr(39), chr(39) * 2)}'"
        for hook in await self.client.list_registry_webhooks(filter=clause, top=MAX_WEBHOOKS, retry=False):
            if hook.pipeline == event.pipeline and (not hook.repo_name or hook.repo_name == event.repo):
                return _fixers(hook.name, hook.updated_by, hook.created_by)
        return None

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


def _fixers(name: str | None, *people: str | None) -> FailureContext:
    """Who can fix a trigger: its last saver and its creator, once each, as Code Stream names them."""
    return FailureContext(fixers=tuple(dict.fromkeys(p for p in people if p)), webhook=name)
