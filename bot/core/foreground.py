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

What a request does before its ack (Bolt's authorization, say) is never parked: it *is* the
foreground. The request's context is marked as such, and the tasks Bolt starts for it inherit
the mark, so the work after the ack says where the background begins (:meth:`Foreground.behind`).
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


# True inside a request's handling until its ack (and in the tasks started from it, until they
# call Foreground.behind()).
_ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("answering", default=False)


class Foreground:
    """The requests being answered now, and turns for the background work behind them."""

    def __init__(self, trickle: float = DEFAULT_TRICKLE_S) -> None:
        self.trickle = trickle
        self._pending = 0
        self._parked: collections.deque[asyncio.Future[None]] = collections.deque()
        self._next: asyncio.Handle | None = None  # the next release, when one is scheduled

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
        mark = _ANSWERING.set(True)
        try:
            yield
        finally:
            _ANSWERING.reset(mark)
            self._pending -= 1
            if self._pending == 0 and self._parked and isinstance(self._next, asyncio.TimerHandle):
                self._next.cancel()  # the acks have drained: no need to wait for the trickle
                self._next = None
                self._schedule()

    @staticmethod
    def behind() -> None:
        """From here on, the current task is background work (call it right after the ack)."""
        _ANSWERING.set(False)

    async def wait_turn(self) -> None:
        """Return at once in the foreground, or if nothing is parked and no answer is pending;
        else at this step's turn."""
        if (self._pending == 0 and not self._parked) or _ANSWERING.get():
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
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
