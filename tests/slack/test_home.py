"""The App Home tab through signed HTTP: opening it publishes what the person may see (failures
of the last 24 h, their own actions, the bot's health), at most once per short interval; its
Rerun button goes through perform() and reruns exactly once, double clicks and retries included."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.simulator.slack_api import wait_for
from bot.slack.render.buttons import ACTION_RERUN
from tests.harness import ALERTS, Harness, harness_with_config

CONFIG = (
    "access:\n  rules:\n"
    "    - users: [U0ALICE]\n      projects: [Payments]\n"  # show, rerun, resume on Payments
    "    - users: [U0BOB]\n      actions: [show]\n      projects: [Platform]\n"
)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness_with_config(tmp_path, CONFIG) as harness:
        yield harness


def fail(h: Harness, project: str, pipeline: str) -> str:
    event = h.sim.add_event("git", executionStatus="FAILED", project=project, pipeline=pipeline, executionIndex=3)
    return str(event["id"])


async def home_of(h: Harness, user: str, publishes: int = 1) -> str:
    await wait_for(lambda: h.slack.home_publishes.get(user, 0) >= publishes, timeout=20)
    return json.dumps(h.slack.home_views[user], ensure_ascii=False)


async def test_the_home_tab_shows_only_what_the_policy_lets_each_person_see(h: Harness) -> None:
    payments, platform = fail(h, "Payments", "payments-deploy"), fail(h, "Platform", "platform-build")
    await h.send.app_home_opened("U0ALICE")
    alice = await home_of(h, "U0ALICE")
    assert payments[:8] in alice and "payments-ci" in alice  # hers, and the seeded one of this morning
    assert platform[:8] not in alice and "Platform" not in alice and "inventory" not in alice
    assert ACTION_RERUN in alice and "codestream_resume" in alice  # each with Rerun and Resume
    assert "Bot health" in alice and "Code Stream:* ok" in alice and "Undeliverable alerts:* ok" in alice
    await h.send.app_home_opened("U0BOB")
    bob = await home_of(h, "U0BOB")
    assert platform[:8] in bob and payments[:8] not in bob and "payments-ci" not in bob
    await h.send.app_home_opened("U0CAROL")  # no rule names Carol
    assert "Nothing you may see is failing" in await home_of(h, "U0CAROL")
    # Opening the Messages tab publishes nothing; opening the Home tab again at once neither.
    await h.send.app_home_opened("U0ALICE", tab="messages")
    await h.send.app_home_opened("U0ALICE")
    h.slack.add_user("U0DAVE", "dave")
    await h.send.app_home_opened("U0DAVE")
    await home_of(h, "U0DAVE")
    assert h.slack.home_publishes["U0ALICE"] == 1


def home_value(h: Harness, user: str, event_id: str) -> str:
    """The value of the Rerun button of ``event_id`` on ``user``'s published Home tab."""
    view = json.dumps(h.slack.home_views[user])
    [found] = {v for v in re.findall(r'"value": "((?:[^"\\]|\\.)*)"', view) if event_id in v}
    return str(json.loads(f'"{found}"'))


async def test_a_stale_home_tab_does_not_rerun_a_newer_run(h: Harness) -> None:
    """Found by review: a tab stays on screen; once the event was rerun (from vRA, or by someone
    whose intent claim has ended), its old button must not run it again."""
    event_id = fail(h, "Payments", "payments-deploy")
    await h.send.app_home_opened("U0ALICE")
    await home_of(h, "U0ALICE")
    h.sim.act_on_event("git", event_id, "Rerun", "someone-in-vra")
    h.sim.reset_requests()
    await h.send.home_action(ACTION_RERUN, "U0ALICE", value=home_value(h, "U0ALICE", event_id))
    after = await home_of(h, "U0ALICE", publishes=2)
    assert "rerun since" in after and h.posts() == 0


async def test_a_rerun_from_the_home_tab_runs_once_and_the_tab_shows_its_outcome(h: Harness) -> None:
    event_id = fail(h, "Payments", "payments-deploy")
    await h.send.app_home_opened("U0ALICE")
    await home_of(h, "U0ALICE")
    value = home_value(h, "U0ALICE", event_id)
    clicks: list[Any] = [
        h.send.home_action(ACTION_RERUN, "U0ALICE", value=value),
        h.send.home_action(ACTION_RERUN, "U0ALICE", value=value),
        h.send.home_action(ACTION_RERUN, "U0ALICE", value=value, retry=1),
    ]
    assert {r.status_code for r in await asyncio.gather(*clicks)} == {200}
    await wait_for(lambda: h.posts() >= 1, timeout=20)
    # The tab is published again with the outcome (after each click that ran).
    after = await home_of(h, "U0ALICE", publishes=2)
    assert "Rerun" in after
    await wait_for(lambda: h.slack.home_publishes["U0ALICE"] >= 3, timeout=20)  # a second click, told
    assert h.sim.count("POST", f"/codestream/api/git-events/{event_id}") == 1
    rows = [r for r in await h.store.actions.list() if r.event_id == event_id]
    ran = [r.status for r in rows if r.status != "duplicate"]
    assert ran in (["started"], ["unknown"]), rows  # one ran; whoever else got through was told


async def test_a_rerun_from_the_home_tab_of_an_alerted_failure_answers_in_the_alert_thread(h: Harness) -> None:
    event_id = fail(h, "Payments", "payments-deploy")
    alert = await h.post_alert("git", event_id)
    await h.send.app_home_opened("U0ALICE")
    await home_of(h, "U0ALICE")
    await h.send.home_action(ACTION_RERUN, "U0ALICE", value=home_value(h, "U0ALICE", event_id))
    summary = await wait_for(lambda: [m for m in h.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"], timeout=20)
    assert summary and h.sim.count("POST", f"/codestream/api/git-events/{event_id}") == 1
    after = await home_of(h, "U0ALICE", publishes=2)
    assert f"<#{ALERTS}>" in after  # the tab says where the summary is
    # The tab lists the action among her own.
    await wait_for(lambda: "Your recent actions" in after, timeout=1)
    assert "rerun git" in after


async def test_a_rule_limited_to_a_channel_does_not_allow_acting_from_the_home_tab(tmp_path: Path) -> None:
    """Found by review: the Home button was checked as if clicked in the alert's channel, so a
    rule `channels: [ops]` let anyone rerun from Home without being in #ops."""
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE, U0BOB]\n      actions: [show]\n"
        f"    - channels: [{ALERTS}]\n      actions: [rerun]\n"
    )
    async with harness_with_config(tmp_path, config) as h:
        event_id = fail(h, "Payments", "payments-deploy")
        await h.post_alert("git", event_id)
        await h.send.app_home_opened("U0BOB")
        await home_of(h, "U0BOB")
        h.sim.reset_requests()
        await h.send.home_action(ACTION_RERUN, "U0BOB", value=home_value(h, "U0BOB", event_id))
        after = await home_of(h, "U0BOB", publishes=2)
        assert "allow" in after and h.posts() == 0
