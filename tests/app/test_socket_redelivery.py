"""Socket Mode: Slack redelivers an envelope it saw no ack for on the next connection (with
``retry_attempt``), and drops connections routinely (a ``disconnect`` message) or abruptly. A
redelivered command, click or form acts once; every envelope is acked; after ten drops the bot
holds one connection and acts on what comes next."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.serve import RunningBot, Timings
from bot.app.settings import load_settings
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator
from bot.simulator.slack_api import Message, SlackStandIn, wait_for
from bot.slack.listeners.commands import COMMAND
from tests.harness import ALERTS, BOT_TOKEN, FAST, bot_env


@pytest.fixture
async def socket_bot(tmp_path: Path) -> AsyncIterator[tuple[CodeStreamSimulator, SlackStandIn, RunningBot]]:
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = bot_env(sim, slack, tmp_path, SLACK_APP_TOKEN="xapp-1-A0TEST-fake", BOT_HEALTH_PORT="0")
        timings = Timings(retry=FAST, socket_ping=0.2)  # a dropped connection noticed in 0.2 s, not 10
        async with RunningBot(load_settings(env), mode="socket", timings=timings) as bot:
            await wait_for(lambda: slack.socket_connections >= 1)
            yield sim, slack, bot


def command(slack: SlackStandIn, text: str, trigger: str) -> dict[str, Any]:
    return {
        "command": COMMAND,
        "text": text,
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel_id": ALERTS,
        "team_id": "T0TEST",
        "response_url": slack.new_response_url(channel=ALERTS, user="U0ALICE"),
        "trigger_id": trigger,
    }


async def test_a_redelivered_command_acts_once(
    socket_bot: tuple[CodeStreamSimulator, SlackStandIn, RunningBot],
) -> None:
    sim, slack, _ = socket_bot
    payload = command(slack, "run nightly-report", "111.222.aaa")
    first = await slack.socket_deliver("slash_commands", payload)
    again = await slack.socket_deliver("slash_commands", payload, retry_attempt=1, retry_reason="timeout")
    await wait_for(lambda: {first, again} <= set(slack.socket_acks) or None)  # both acked
    await wait_for(lambda: [m for m in slack.messages(ALERTS) if m.user == "U0BOT"] or None)
    rerun = command(slack, f"rerun {SAMPLE_FAILED_GIT_ID}", "333.444.bbb")
    for attempt in (0, 1, 2):
        await slack.socket_deliver("slash_commands", rerun, retry_attempt=attempt)
    await wait_for(lambda: sim.count("POST", f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}") >= 1 or None)
    # A later, different command still runs (what was claimed is the delivery, not the words).
    later = await slack.socket_deliver("slash_commands", command(slack, "run nightly-report", "555.666.ccc"))
    await wait_for(lambda: later in slack.socket_acks or None)
    await wait_for(lambda: sim.count("POST", "/codestream/api/pipelines/") >= 2 or None)
    assert sim.count("POST", "/codestream/api/pipelines/") == 2
    assert sim.count("POST", f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}") == 1


async def test_ten_drops_clean_and_abrupt_lose_nothing_and_act_once(
    socket_bot: tuple[CodeStreamSimulator, SlackStandIn, RunningBot],
) -> None:
    sim, slack, _ = socket_bot
    tasks_before = socket_tasks()
    for n in range(10):
        opened = slack.socket_opened
        # A command, then the connection goes at once: its ack may be lost with it, and Slack
        # delivers it again on the next connection.
        await slack.socket_deliver("slash_commands", command(slack, "run nightly-report", f"777.{n}.drop"))
        await slack.socket_drop(clean=n % 2 == 0)
        await wait_for(lambda: (slack.socket_opened > opened and slack.socket_connections == 1) or None)  # noqa: B023
    sent = {d["envelope_id"] for d in slack.socket_deliveries}
    await wait_for(lambda: sent <= set(slack.socket_acks) or None, timeout=20)  # every envelope acked

    def runs() -> int:
        return sim.count("POST", "/codestream/api/pipelines/")

    await wait_for(lambda: runs() >= 10 or None, timeout=20)

    def summaries() -> list[Message]:
        return [m for m in slack.messages(ALERTS) if m.user == "U0BOT" and " ran " in m.text]

    await wait_for(lambda: len(summaries()) >= 10 or None, timeout=20)
    assert runs() == 10 and len(summaries()) == 10  # each command once, none lost
    redelivered = [d for d in slack.socket_deliveries if d["retry_attempt"]]
    print(f"deliveries {len(slack.socket_deliveries)}, redelivered {len(redelivered)}")
    assert slack.socket_connections == 1

    # Per-message listener tasks end once their envelope is handled; a connection's own tasks
    # (receive loop, monitor) left by a reconnect would stay: wait for the first, fail on the second.
    def left() -> Counter[str]:
        return Counter(socket_tasks()) - Counter(tasks_before)

    try:
        await wait_for(lambda: not left() or None, timeout=15)
    except AssertionError:
        raise AssertionError(f"left behind by the reconnects: {dict(left())}") from None


def socket_tasks() -> list[str]:
    """The Socket Mode client's own tasks (its receive loop, monitor, listeners), by coroutine."""
    return sorted(
        task.get_coro().__qualname__  # type: ignore[union-attr]
        for task in asyncio.all_tasks()
        if "socket_mode" in getattr(task.get_coro(), "__module__", "") or "SocketMode" in repr(task.get_coro())
    )
