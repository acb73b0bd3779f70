"""A loop waiting for its wake-up event stops when cancelled, even when the cancel arrives just as
the event is set (asyncio.wait_for on Python 3.11 swallows that cancel, and such a loop ran on:
a test hung for its whole timeout)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.core.waiting import wait_event


async def _loop_until_cancelled(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    """Whether a loop of ``wait`` ended when cancelled as its event was set."""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            await wait(event)
            event.clear()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # it waits
    event.set()
    await asyncio.sleep(0)  # the event's waiter is done; the loop has not resumed yet
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    return task.cancelled()


async def test_a_cancel_as_the_event_is_set_ends_the_loop() -> None:
    assert await _loop_until_cancelled(lambda event: wait_event(event, 10.0))


async def test_asyncio_wait_for_would_have_swallowed_it() -> None:
    """The cause, shown: the same loop on asyncio.wait_for runs on (Python 3.11)."""

    async def old(event: asyncio.Event) -> None:
        await asyncio.wait_for(event.wait(), timeout=10.0)

    import sys

    if sys.version_info >= (3, 12):
        pytest.skip("asyncio.wait_for no longer swallows the cancel on Python 3.12+")
    assert not await _loop_until_cancelled(old)


async def test_it_times_out_and_says_whether_the_event_is_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
