"""Waiting for an event with a deadline, in the bot's loops.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives just as what it waits
for completes: it returns the result instead of raising. A loop waiting for its wake-up event
that way can miss the cancel that should end it (a test's ``task.cancel()``, a shutdown past its
grace) and run on for ever. ``asyncio.timeout`` tells its own timeout from a cancel and never
swallows the latter.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, within: float) -> bool:
    """Wait until ``event`` is set, at most ``within`` seconds; True when it is set."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
