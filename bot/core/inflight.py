"""Interactions being worked on, counted so a graceful shutdown can wait for them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from bot.core.waiting import wait_event

log = logging.getLogger(__name__)


class InFlight:
    """Counts interactions being worked on, so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # The tasks doing that work (how many times each is tracked), to cancel at the end.
        self._tasks: Counter[asyncio.Task[Any]] = Counter()

    @property
    def count(self) -> int:
        return self._count

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        self.enter(task)
        try:
            yield
        finally:
            self.leave(task)

    def enter(self, task: asyncio.Task[Any] | None = None) -> None:
        """One more in flight (from a plain function: e.g. before ``task`` is started)."""
        self._count += 1
        self._idle.clear()
        if task is not None:
            self._tasks[task] += 1

    def leave(self, task: asyncio.Task[Any] | None = None) -> None:
        self._count -= 1
        if task is not None:
            self._tasks[task] -= 1
            if self._tasks[task] <= 0:
                del self._tasks[task]
        if self._count == 0:
            self._idle.set()

    async def cancel(self, within: float) -> None:
        """The grace is over: cancel what is still in flight and give it ``within`` seconds to
        hand over (an action whose request may have left is marked unknown for the reconciler;
        one claimed but not sent is released), so the process exits on time."""
        tasks = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, left = await asyncio.wait(tasks, timeout=within)
            log.warning(
                "cancelled the work still in flight at the end of the grace period",
                extra={"in_flight": len(tasks), "not_handed_over": len(left)},
            )

    async def drain(self, grace: float) -> bool:
        """Wait until nothing is in flight, at most ``grace`` seconds; True when drained."""
        if not await wait_event(self._idle, grace):
            log.warning("shutdown grace period over with work still in flight", extra={"in_flight": self._count})
            return False
        return True
