"""Per-channel pacing of the bot's own bulk traffic (alerts, digests and their redraws).

Slack lets an app post about one message per second in a channel, with short bursts; beyond
that it answers 429 with ``Retry-After``, which the Web API client waits out (and counts). A
storm must not lean on that: the watcher's posts and updates in one channel take a token from
that channel's bucket (a burst of ``burst``, then ``rate`` a second) and wait for one when it is
empty. Answers to people (summaries, ephemeral replies) are not paced here: they are few per
person, and a 429 on them is still waited out by the client.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Final

DEFAULT_RATE: Final = 1.0  # tokens a second, per channel
DEFAULT_BURST: Final = 3.0
_MAX_CHANNELS: Final = 2000  # buckets kept (an idle bucket is full: forgetting it loses nothing)


class ChannelPacer:
    def __init__(self, *, rate: float = DEFAULT_RATE, burst: float = DEFAULT_BURST) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("need rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # channel -> (tokens, at)
        self._locks: dict[str, asyncio.Lock] = {}
        self.waited = 0.0  # seconds spent waiting, all channels (for tests and the benchmark)

    async def wait(self, channel: str) -> None:
        """Take a token for ``channel``, waiting until there is one. Callers are served in order."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            tokens, at = self._buckets.pop(channel, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1:
                delay = (1 - tokens) / self.rate
                self.waited += delay
                await asyncio.sleep(delay)
                now, tokens = time.monotonic(), 1.0
            self._buckets[channel] = (tokens - 1, now)
            while len(self._buckets) > _MAX_CHANNELS:
                old, _ = self._buckets.popitem(last=False)
                self._locks.pop(old, None)
