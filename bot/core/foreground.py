"""Acks first: requests waiting for their answer go before the work that follows earlier ones.

Slack wants its HTTP answer (the ack) within 3 seconds; the work after an ack (store writes,
Code Stream calls, Slack posts) can wait a little. Both share one event loop, which runs ready
callbacks in arrival order, so under a burst every ack step queues behind many work steps.

``Foreground`` counts the requests the server is still answering. Work after the ack calls
:meth:`Foreground.wait_turn` before each of its I/O steps (admission to the bounded work pool, each
store transaction, each Code Stream request, each Slack Web API call). While nothing is parked and
no answer is pending that costs nothing. Otherwise the step parks in a FIFO queue, which is let go
one step at a time: one per event-loop pass while no answer is pending (so a request that arrives
meanwhile waits behind at most one step, not behind the whole backlog), and one every ``trickle``
seconds while answers are pending (so a steady stream of requests slows the work but never starves
it). Nothing is dropped: parked work resumes where it stopped.

Only the work after a Slack interaction's ack parks: the listener marks its task with
:meth:`Foreground.behind` right after the ack (tasks it starts inherit the mark). Everything
else never waits here: what a request does before its ack, the health checks, heartbeats and
leases (which have deadlines of their own), the watcher and the follow-through (already paced by
their own budgets).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Iterator
from typing import Final

#: While acks are pending, one parked step of background work goes on this often.
DEFAULT_TRICKLE_S: Final = 0.01


# True in the work after an interaction's ack (and in the tasks it starts): the work that yields.
_BEHIND: contextvars.ContextVar[bool] = contextvars.ContextVar("behind", default=False)


class Foreground:
    """The requests being answered now, and turns for the background work behind them."""

    def __init__(self, trickle: float = DEFAULT_TRICKLE_S) -> None:
        self.trickle = trickle
        self._pending = 0
        self._parked: collections.deque[asyncio.Future[None]] = collections.deque()
        self._next: asyncio.Handle | None = None  # the next release, when one is scheduled
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the parked futures belong to

    @property
    def pending(self) -> int:
        """Requests whose answer has not gone yet."""
        return self._pending

    @property
    def parked(self) -> int:
        """Steps of background work waiting for their turn."""
        return len(self._parked)

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one request, until its answer has been sent."""
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1
            if self._pending == 0 and self._parked and isinstance(self._next, asyncio.TimerHandle):
                self._next.cancel()  # the acks have drained: no need to wait for the trickle
                self._next = None
                self._schedule()

    @staticmethod
    def behind() -> None:
        """From here on, the current task is work after an ack (call it right after the ack)."""
        _BEHIND.set(True)

    async def wait_turn(self) -> None:
        """Return at once outside the work after an ack, or if nothing is parked and no answer
        is pending; else at this step's turn."""
        if not _BEHIND.get() or (self._pending == 0 and not self._parked):
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): what the old one left is void
            self._loop, self._next = loop, None
            self._parked.clear()
        turn: asyncio.Future[None] = loop.create_future()
        self._parked.append(turn)
        self._schedule()
        await turn

    def _schedule(self) -> None:
        if self._next is not None:
            return
        loop = asyncio.get_running_loop()
        if self._pending == 0:
            self._next = loop.call_soon(self._release_one)
        else:
            self._next = loop.call_later(self.trickle, self._release_one)

    def _release_one(self) -> None:
        self._next = None
        while self._parked:
            turn = self._parked.popleft()
            if not turn.done():  # a cancelled waiter has no turn to take
                turn.set_result(None)
                break
        if self._parked:
            self._schedule()
