"""Mute from the alert, through signed HTTP: a muted pipeline posts nothing (counted, shown by
`list`) until it is unmuted, expires or passes again; `mutes` lists, `unmute <n>` ends one; the
access action `mute` guards it; every mute and unmute is audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bot.codestream.models import Event
from bot.core.routing import Router
from bot.core.watcher import Watcher, WatchTiming
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.mute import ACTION_MUTE, mute_value
from bot.store import MuteRecord
from tests.harness import ALERTS, Harness, harness_with_config


def muted_total() -> float:
    return REGISTRY.get_sample_value("codestream_bot_alerts_muted_total", {"kind": "git"}) or 0.0


def watcher_of(h: Harness) -> Watcher:
    return h.runtime.watcher(Router(fallback=ALERTS), timing=WatchTiming(30, 900), holder="test-watcher")


def fail(h: Harness, pipeline: str = "mute-ci", branch: str = "main") -> dict[str, object]:
    return h.sim.add_event(
        "git", executionStatus="FAILED", pipeline=pipeline, project="Muting", repo="mute-repo", targetBranch=branch
    )


def top_level(h: Harness) -> list[Message]:
    """Top-level alerts of this test's pipelines (the seeded sample failures aside)."""
    return [
        m
        for m in h.slack.messages(ALERTS)
        if m.user == "U0BOT" and m.thread_ts is None and ("mute-ci" in m.text or "billing-ci" in m.text)
    ]


async def first_alert(h: Harness) -> tuple[Watcher, Message, Event]:
    """A failure of mute-ci, alerted: the watcher, the alert and the event it shows."""
    watcher = watcher_of(h)
    first = fail(h)
    await watcher.poll_once()
    [alert] = top_level(h)
    return watcher, alert, await h.runtime.client.get_event("git", str(first["id"]))


async def mute_from(h: Harness, alert: Message, value: str, user: str = "U0ALICE") -> None:
    await h.send.block_action(ACTION_MUTE, user=user, channel=ALERTS, message_ts=alert.ts, option=value)


async def answered(h: Harness, seen: int) -> str:
    await wait_for(lambda: len(h.slack.responses) > seen or h.slack.ephemerals_for("U0BOB"), timeout=10)
    return json.dumps([r.body for r in h.slack.responses[seen:]] + [e.blocks for e in h.slack.ephemerals_for("U0BOB")])


async def test_a_muted_pipeline_posts_nothing_until_it_is_unmuted(harness: Harness) -> None:
    h = harness
    watcher, alert, event = await first_alert(h)
    menu = [e for b in alert.blocks if b.get("type") == "actions" for e in b["elements"] if e["type"] == "overflow"]
    assert menu and len(menu[0]["options"]) == 5  # Slack's limit
    await mute_from(h, alert, mute_value(event, "pipeline", "1d"))
    said = await wait_for(lambda: [m for m in h.slack.messages(ALERTS) if m.thread_ts == alert.ts], timeout=10)
    assert "muted mute-ci (Muting) for 1 day" in said[0].text and "/codestream unmute 1" in said[0].text
    before = muted_total()
    fail(h)  # the same pipeline, another push
    stats = await watcher.poll_once()
    assert stats.alerts_posted == 0 and stats.kinds["git"].muted == 1 and muted_total() == before + 1
    assert len(top_level(h)) == 1
    # `list` shows it as muted; `mutes` lists the mute with its count.
    seen = len(h.slack.responses)
    await h.send.slash_command("list")
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    assert "🔕 muted: mute-ci (Muting)" in json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
    seen = len(h.slack.responses)
    await h.send.slash_command("mutes")
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    listing = json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
    assert "*#1* mute-ci (Muting)" in listing and "1 failure not alerted" in listing
    # Another pipeline is not muted.
    fail(h, pipeline="billing-ci")
    assert (await watcher.poll_once()).alerts_posted == 1
    # unmute 1 → alerted again.
    seen = len(h.slack.responses)
    await h.send.slash_command("unmute 1")
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    assert "unmuted mute-ci (Muting)" in json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
    assert h.slack.responses[-1].body.get("response_type") == "ephemeral"
    fail(h)
    assert (await watcher.poll_once()).alerts_posted == 1
    rows = await h.store.actions.list()
    assert sorted(r.action for r in rows if r.action in ("mute", "unmute")) == ["mute", "unmute"]
    await watcher.stop()


async def test_until_it_passes_ends_at_a_passing_run_and_an_hour_ends_by_itself(harness: Harness) -> None:
    h = harness
    watcher, alert, event = await first_alert(h)
    await mute_from(h, alert, mute_value(event, "branch", "pass"))
    await wait_for(lambda: [m for m in h.slack.messages(ALERTS) if m.thread_ts == alert.ts], timeout=10)
    fail(h, pipeline="other-ci")  # the same repository and branch, another pipeline: muted too
    assert (await watcher.poll_once()).kinds["git"].muted == 1
    h.sim.add_event(
        "git", executionStatus="COMPLETED", pipeline="mute-ci", project="Muting", repo="mute-repo", targetBranch="main"
    )
    await watcher.poll_once()  # it passed: the mute ends
    assert await h.store.mutes.active(h.store.now()) == []
    # An hour's mute is over after the hour (the store's clock decides; no waiting here).
    now = h.store.now()
    mute_id = await h.store.mutes.add(
        MuteRecord(
            scope="pipeline",
            kind="git",
            project="Muting",
            pipeline="mute-ci",
            until=now + timedelta(hours=1),
            muted_by="U0ALICE",
            created_at=now,
        )
    )
    assert [m.id for m in await h.store.mutes.active(now)] == [mute_id]
    assert await h.store.mutes.active(now + timedelta(hours=1, seconds=1)) == []
    await watcher.stop()


@pytest.fixture
async def no_mute_for_bob(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show, rerun, resume, mute]\n      projects: [Muting]\n"
        "    - users: [U0BOB]\n"  # no actions: every verb, but not mute (it must be named)
        "    - users: [U0CAROL]\n      actions: [show, mute]\n"
    )
    async with harness_with_config(tmp_path, config) as h:
        yield h


async def test_someone_the_policy_does_not_let_mute_is_refused_and_audited(no_mute_for_bob: Harness) -> None:
    h = no_mute_for_bob
    watcher, alert, event = await first_alert(h)
    await mute_from(h, alert, mute_value(event, "pipeline", "1h"), user="U0BOB")
    await wait_for(lambda: h.slack.ephemerals_for("U0BOB"), timeout=10)
    refusal = json.dumps([e.text for e in h.slack.ephemerals_for("U0BOB")])
    assert "which may mute Muting pipelines (mute-ci)" in refusal, refusal
    assert await h.store.mutes.active(h.store.now()) == []
    fail(h)
    assert (await watcher.poll_once()).alerts_posted == 1  # nothing was muted
    [row] = [r for r in await h.store.actions.list() if r.action == "mute"]
    assert (row.status, row.actor_id) == ("denied", "U0BOB")
    await watcher.stop()


async def test_a_branch_mute_needs_a_rule_covering_every_project(no_mute_for_bob: Harness) -> None:
    """A branch mute silences every project's pipelines on that branch: Alice, whose mute rule
    names only the Muting project, may mute its pipeline but not the branch; Carol may."""
    h = no_mute_for_bob
    watcher, alert, event = await first_alert(h)
    await mute_from(h, alert, mute_value(event, "branch", "1d"), user="U0ALICE")
    await wait_for(lambda: h.slack.ephemerals_for("U0ALICE"), timeout=10)
    assert await h.store.mutes.active(h.store.now()) == []
    await mute_from(h, alert, mute_value(event, "branch", "1d"), user="U0CAROL")
    await wait_for(lambda: [m for m in h.slack.messages(ALERTS) if m.thread_ts == alert.ts], timeout=10)
    [mute] = await h.store.mutes.active(h.store.now())
    assert (mute.scope, mute.repo, mute.branch) == ("branch", "mute-repo", "main")
    # `mutes` shows it only to whoever may see its events (Bob may: every verb includes show).
    seen = len(h.slack.responses)
    await h.send.slash_command("mutes", user="U0DAVE")  # no rule names Dave
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    assert "Nothing is muted" in json.dumps(h.slack.responses[-1].body, ensure_ascii=False)
    await watcher.stop()


async def test_a_double_click_makes_one_mute_and_a_pass_elsewhere_does_not_end_it(harness: Harness) -> None:
    h = harness
    watcher, alert, event = await first_alert(h)
    value = mute_value(event, "pipeline", "pass")
    await mute_from(h, alert, value)
    await mute_from(h, alert, value)

    def both_answered() -> bool:  # the first says so in the thread; the second too, or is told it is in hand
        said = len([m for m in h.slack.messages(ALERTS) if m.thread_ts == alert.ts])
        return said >= 2 or (said >= 1 and len(h.slack.ephemerals_for("U0ALICE")) >= 1)

    await wait_for(both_answered, timeout=10)
    assert len(await h.store.mutes.active(h.store.now())) == 1
    h.sim.add_event(
        "git",
        executionStatus="COMPLETED",
        pipeline="mute-ci",
        project="Muting",
        repo="mute-repo",
        targetBranch="feature-x",
    )
    await watcher.poll_once()  # a pass on another branch says nothing about main
    assert len(await h.store.mutes.active(h.store.now())) == 1
    await watcher.stop()
