"""The watcher's own traffic is paced per channel (a burst, then one a second, as Slack asks for
chat.postMessage), so a storm never leans on 429s; other channels and answers are not held up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.core.routing import Router
from bot.core.watcher import WatchTiming
from bot.slack.pacing import ChannelPacer
from tests.harness import ALERTS, Harness, running_harness


async def test_a_channel_gets_its_burst_then_one_token_per_interval() -> None:
    pacer = ChannelPacer(rate=20.0, burst=2)
    started = time.monotonic()
    for _ in range(6):
        await pacer.wait("C1")
    # 2 at once, then 4 more at 20 a second: at least 0.2 s (a lower bound: never flaky).
    assert time.monotonic() - started >= 0.19
    assert pacer.waited >= 0.19
    waited = pacer.waited
    await pacer.wait("C2")  # another channel has its own bucket: a token at once
    assert pacer.waited == waited


async def test_waiters_are_served_in_order_and_each_waits_its_turn() -> None:
    pacer = ChannelPacer(rate=50.0, burst=1)
    done: list[int] = []

    async def one(n: int) -> None:
        await pacer.wait("C1")
        done.append(n)

    await asyncio.gather(*(one(n) for n in range(5)))
    assert done == [0, 1, 2, 3, 4]
    assert pacer.waited >= 4 / 50 - 0.005


def test_a_pacer_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="rate"):
        ChannelPacer(rate=0)


async def test_the_watchers_alerts_in_one_channel_are_spaced_after_the_burst(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_SLACK_CHANNEL_RATE="2") as h:
        await _spaced_after_the_burst(h)


async def _spaced_after_the_burst(h: Harness) -> None:
    watcher = h.runtime.watcher(
        Router(fallback=ALERTS), timing=WatchTiming(30, 1), holder="test-watcher", digest_threshold=0
    )
    await watcher.poll_once()
    h.sim.fail_burst(8, prefix="paced")
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 8
    posts = [c.at for c in h.slack.calls_to("chat.postMessage") if c.args.get("channel") == ALERTS]
    # A bucket of 3, refilled at BOT_SLACK_CHANNEL_RATE=2 a second: 8 posts leave the bot at
    # least (8 - 3) / 2 = 2.5 s apart from the first to the last, however slow the machine
    # (slowness only refills the bucket). 1 s is left for the posts' own transit to the stand-in,
    # which varies on a loaded machine (0.3 s was once not enough).
    assert posts[-1] - posts[-8] >= 1.5
    await watcher.stop()
