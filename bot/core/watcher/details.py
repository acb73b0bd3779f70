"""Why a failure failed, for its alert: one read of the failed execution, bounded and cached, so
a re-post, a retry or another kind's cycle never reads it again. A read that fails, or a shape
that says nothing, means an alert without details — never a delayed or missing alert."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import CodeStreamError
from bot.codestream.models import Event
from bot.core.failures import FailureContext, failure_context

log = logging.getLogger("bot.core.watcher")

CACHE_SIZE: Final = 2048  # executions remembered (a failed execution does not change)


class FailureDetails:
    def __init__(self, client: CodeStreamClient, *, size: int = CACHE_SIZE) -> None:
        self.client = client
        self.size = size
        self.reads = 0  # execution reads made (the benchmark's steady state must not grow)
        self._known: OrderedDict[str, FailureContext | None] = OrderedDict()

    async def of(self, event: Event) -> FailureContext | None:
        """The failed stage, task and error of the event's execution; None without one (a
        trigger failure: the alert shows the event's own message)."""
        execution_id = event.execution_id
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
