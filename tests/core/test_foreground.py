"""Acks first: work after the ack waits while requests are being answered, never forever."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from bot.core.foreground import Foreground


async def wait_for(check: Callable[[], bool], within: float = 5.0) -> None:
    """Let the loop run until ``check()`` holds (a deadline, not a sleep)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - a condition of plain state, polled each loop pass
            await asyncio.sleep(0)


async def test_with_nothing_being_answered_work_goes_on_at_once() -> None:
    foreground = Foreground()
    await asyncio.wait_for(foreground.wait_turn(), 1)
    assert foreground.parked == 0


async def test_work_waits_while_a_request_is_answered_and_goes_on_when_its_answer_has_gone() -> None:
    foreground = Foreground(trickle=60)  # no trickle turn within the test: only the drain lets go
    done: list[int] = []

    async def step(n: int) -> None:
        foreground.behind()  # work after an ack
        await foreground.wait_turn()
        done.append(n)

    with foreground.answering():
        steps = [asyncio.create_task(step(n)) for n in range(3)]
        await wait_for(lambda: foreground.parked == 3)
        for _ in range(5):
            await asyncio.sleep(0)
        assert done == []  # parked behind the pending answer
    await asyncio.wait_for(asyncio.gather(*steps), 2)
    assert done == [0, 1, 2]  # in the order they came


async def test_after_the_answers_the_backlog_goes_one_step_per_loop_pass() -> None:
    """A request that arrives during the drain waits behind one step, not the whole backlog."""
    foreground = Foreground(trickle=60)
    parked_when_running: list[int] = []

    async def step() -> None:
        foreground.behind()
        await foreground.wait_turn()
        parked_when_running.append(foreground.parked)

    with foreground.answering():
        steps = [asyncio.create_task(step()) for _ in range(4)]
        await wait_for(lambda: foreground.parked == 4)
    await asyncio.wait_for(asyncio.gather(*steps), 2)
    assert parked_when_running == [3, 2, 1, 0]


async def test_a_steady_stream_of_requests_slows_the_work_but_never_starves_it() -> None:
    foreground = Foreground(trickle=0.01)
    done: list[int] = []

    async def step(n: int) -> None:
        foreground.behind()  # work after an ack
        await foreground.wait_turn()
        done.append(n)

    with foreground.answering():  # never ends during the test
        steps = [asyncio.create_task(step(n)) for n in range(5)]
        await asyncio.wait_for(asyncio.gather(*steps), 5)
        assert done == [0, 1, 2, 3, 4]
        assert foreground.pending == 1


async def test_the_request_itself_is_never_parked_until_its_work_steps_behind() -> None:
    """What runs before the ack (and the tasks Bolt starts for it) is the foreground."""
    foreground = Foreground(trickle=60)
    blocker = asyncio.create_task(_park_behind(foreground))
    with foreground.answering():
        await wait_for(lambda: foreground.parked == 1)
        await asyncio.wait_for(foreground.wait_turn(), 1)  # the request's own I/O: not parked

        async def listener() -> str:
            await foreground.wait_turn()  # before the ack: inherits the request's mark
            foreground.behind()  # the ack has gone
            await foreground.wait_turn()
            return "worked"

        work = asyncio.create_task(listener())
        await wait_for(lambda: foreground.parked == 2)
        assert not work.done()
    assert await asyncio.wait_for(work, 2) == "worked"
    await asyncio.wait_for(blocker, 2)


async def test_a_cancelled_step_does_not_hold_up_the_next() -> None:
    foreground = Foreground(trickle=0.01)
    with foreground.answering():
        first = asyncio.create_task(_park_behind(foreground))
        second = asyncio.create_task(_park_behind(foreground))
        await wait_for(lambda: foreground.parked == 2)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 2)


async def _park_behind(foreground: Foreground) -> None:
    foreground.behind()
    await foreground.wait_turn()


async def test_work_that_is_not_behind_an_ack_never_waits() -> None:
    """Health checks, heartbeats, leases, the watcher: deadlines of their own, never parked."""
    foreground = Foreground(trickle=60)
    with foreground.answering():
        parked = [asyncio.create_task(_park_behind(foreground)) for _ in range(50)]
        await wait_for(lambda: foreground.parked == 50)

        async def heartbeat() -> str:
            await foreground.wait_turn()
            return "beat"

        assert await asyncio.wait_for(asyncio.create_task(heartbeat()), 1) == "beat"
    await asyncio.wait_for(asyncio.gather(*parked), 5)
