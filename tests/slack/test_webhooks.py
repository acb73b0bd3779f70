"""``/codestream webhooks [project]``: each git webhook the person may see, whether its last
push started its pipeline, how many recent pushes did not and why, and when it was last saved
(flagged when its token may expire soon)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.alerts import post_alert
from bot.core.watcher.details import FailureDetails
from bot.simulator.cs_events import format_ts, now_micros
from bot.simulator.cs_seed import TRIGGER_FAILURE_MESSAGE
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.webhook_alert import ACTION_RERUN_MISSED, ACTION_RERUN_NEWEST, ACTION_WEBHOOK_CHECK
from tests.harness import ALERTS, Harness, buttons, everything, harness_with_config

DAY_US = 86_400 * 1_000_000


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show]\n"
        "    - users: [U0BOB]\n      actions: [show]\n      projects: [Storefront]\n"
    )
    async with harness_with_config(tmp_path, config) as harness:
        yield harness


async def ask(h: Harness, text: str, user: str = "U0ALICE") -> str:
    seen = len(h.slack.responses)
    await h.send.slash_command(text, user=user, channel=ALERTS)
    await wait_for(lambda: len(h.slack.responses) > seen or None, timeout=10)
    return json.dumps(h.slack.responses[-1].body, ensure_ascii=False)


async def test_webhooks_with_their_health_for_whoever_may_see_them(h: Harness) -> None:
    old = now_micros() - 85 * DAY_US
    broken = h.sim.webhooks.add("payments-main", project="Payments", expired=True, createdBy="fritz@example.com")
    for n in range(3):
        h.sim.webhooks.push(str(broken["id"]), subject=f"push {n}")
    healthy = h.sim.webhooks.add(
        "shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci",
        updatedAt=format_ts(old), _updateTimeInMicros=old,
    )  # fmt: skip
    h.sim.webhooks.push(str(healthy["id"]), subject="ok")

    said = await ask(h, "webhooks")
    assert "payments-main" in said and "not starting its pipeline" in said and "3 recent push" in said
    assert "Invalid Oauth Refresh token" in said and "fritz@example.com" in said
    assert "shop-main" in said and "token may expire soon" in said
    assert said.index("payments-main") < said.index("shop-main")  # the broken one first
    for secret in (broken["refreshToken"], healthy["refreshToken"]):
        assert secret not in said
    only_storefront = await ask(h, "webhooks", user="U0BOB")
    assert "shop-main" in only_storefront and "payments-main" not in only_storefront
    assert "payments-main" not in await ask(h, "webhooks Storefront")


async def test_a_git_clone_failure_shows_its_last_log_lines_and_the_starred_values(h: Harness) -> None:
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    logs = [f"line {n}" for n in range(20)] + [
        f"remote: Invalid username or password. token={token}",
        "fatal: Authentication failed for 'https://github.example.com/payments-api.git/'",
    ]
    execution = h.sim.add_execution(
        pipeline="payments-ci",
        project="Payments",
        status="FAILED",
        workspaceResults=[{"step": "Git clone", "status": "FAILED", "logs": logs}],
        input={"image_tag": "2.4.1"},
        starred={"input": "image_tag"},
    )
    event = h.sim.add_event(
        "git", pipeline="payments-ci", project="Payments", executionStatus="FAILED", executionLink=execution["_link"]
    )
    # As the watcher posts it: the execution read once for why it failed.
    parsed = await h.runtime.client.get_event("git", str(event["id"]))
    failure = await FailureDetails(h.runtime.client).of(parsed)
    record, _ = await post_alert(h.runtime.notifier(), h.store, parsed, channel=ALERTS, failure=failure)
    assert record is not None
    alert = h.slack.message(ALERTS, record.ts)
    assert alert is not None
    shown = json.dumps(alert.blocks, ensure_ascii=False)
    assert "Workspace › Git clone" in shown and "fatal: Authentication failed" in shown
    assert "line 12" in shown and "line 11" not in shown  # the last ten lines
    assert token not in shown and token not in alert.text
    assert "⭐ *image_tag*: `2.4.1`" in shown


async def test_a_trigger_failure_alert_names_who_can_fix_its_webhook(tmp_path: Path) -> None:
    """Through the watcher: the webhook's last saver, mentioned when the people map knows them."""
    config = "people:\n  fritz@example.com: U0FRITZ\n"
    async with harness_with_config(
        tmp_path, config, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1", BOT_MENTION_AUTHOR="true"
    ) as h:
        hook = h.sim.webhooks.add("payments-main", project="Payments", expired=True, createdBy="fritz@example.com")
        event = h.sim.webhooks.push(str(hook["id"]), subject="Fix totals")

        def alert() -> str | None:
            for message in h.slack.messages(ALERTS):
                shown = json.dumps(message.blocks, ensure_ascii=False)
                if message.user == "U0BOT" and str(event["id"]) in shown:
                    return shown
            return None

        shown = await wait_for(alert, timeout=20)
        assert "API token saved in the git webhook expired" in shown
        assert "*Who can fix it:* <@U0FRITZ>" in shown
        # Another push: in the thread, without the fix or a second mention; the alert, redrawn
        # with its count, still mentions who can fix it.
        h.sim.webhooks.push(str(hook["id"]), subject="Fix totals again")

        def counted() -> tuple[str, list[str]] | None:
            roots = [
                m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and str(event["id"]) in json.dumps(m.blocks)
            ]
            if not roots or "2 pushes did not run" not in roots[0].text:
                return None
            replies = [json.dumps(m.blocks) for m in h.slack.thread(ALERTS, roots[0].ts)[1:] if m.user == "U0BOT"]
            return (json.dumps(roots[0].blocks, ensure_ascii=False), replies) if replies else None

        root, replies = await wait_for(counted, timeout=20)
        assert "<@U0FRITZ>" in root
        assert not [r for r in replies if "U0FRITZ" in r or "API token saved" in r]


async def test_pushes_through_one_broken_webhook_are_one_alert_counting_them(tmp_path: Path) -> None:
    async with harness_with_config(tmp_path, "", BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1") as h:
        hook = h.sim.webhooks.add(
            "shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci", expired=True
        )
        subjects = [f"push {n}" for n in range(5)]
        for subject in subjects:
            h.sim.webhooks.push(str(hook["id"]), subject=subject)

        def alerts() -> list[Message]:
            return [
                m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and not m.thread_ts and "storefront" in m.text
            ]

        def counted() -> Message | None:
            found = alerts()
            return found[0] if len(found) == 1 and "5 pushes did not run" in found[0].text else None

        alert = await wait_for(counted, timeout=30)
        assert "Git webhook shop-main is not starting storefront-ci" in alert.text, alert.text
        thread = [m for m in h.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"]
        assert len(thread) == 4 and all("did not run again" in m.text for m in thread)
        assert {s for s in subjects if any(s in m.text for m in [alert, *thread])} == set(subjects)
        assert len(alerts()) == 1


WEBHOOK_CHECK, RERUN_NEWEST, RERUN_MISSED = ACTION_WEBHOOK_CHECK, ACTION_RERUN_NEWEST, ACTION_RERUN_MISSED


def _said_to(h: Harness, user: str, seen: int) -> list[str]:
    """What the bot said to ``user`` alone, after the first ``seen`` such messages."""
    return [everything(m) for m in h.slack.ephemerals_for(user)[seen:]]


async def test_a_broken_webhook_is_checked_again_then_its_missed_pushes_rerun_once(tmp_path: Path) -> None:
    """Five pushes through an expired webhook: one alert with the fix and Check again, no Rerun.
    Saved again and a push starting its pipeline: Check again offers to rerun the 5 missed pushes;
    clicked twice at once, Code Stream gets exactly one rerun per push, newest first."""
    config = (
        "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show, rerun]\n"
        "    - users: [U0BOB]\n      actions: [show]\n"
    )
    async with harness_with_config(tmp_path, config, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1") as h:
        hook = h.sim.webhooks.add("shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci")
        h.sim.webhooks.expire(str(hook["id"]))
        pushed = [str(h.sim.webhooks.push(str(hook["id"]), subject=f"push {n}")["id"]) for n in range(5)]

        def alert() -> Message | None:
            roots = [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and not m.thread_ts]
            return roots[0] if len(roots) == 1 and "5 pushes did not run" in roots[0].text else None

        root = await wait_for(alert, timeout=30)
        assert set(buttons(root)) == {WEBHOOK_CHECK}  # no Rerun: it would fail the same way
        assert "API token saved in the git webhook expired" in everything(root)

        # Still broken: said to the person, the alert unchanged, nothing sent to Code Stream.
        seen = len(h.slack.ephemerals_for("U0ALICE"))
        await h.send.block_action(WEBHOOK_CHECK, user="U0ALICE", channel=ALERTS, message_ts=root.ts)
        said = await wait_for(lambda: _said_to(h, "U0ALICE", seen) or None, timeout=10)
        assert "still broken" in said[0] and "Invalid Oauth Refresh token" in said[0]
        assert set(buttons(h.slack.message(ALERTS, root.ts) or root)) == {WEBHOOK_CHECK}

        # Saved with a new token; the next push starts its pipeline.
        h.sim.webhooks.save(str(hook["id"]), {"refreshToken": "new-token"}, saved_by="fritz@example.com")
        h.sim.webhooks.push(str(hook["id"]), subject="push after the fix")
        seen = len(h.slack.ephemerals_for("U0BOB"))
        await h.send.block_action(WEBHOOK_CHECK, user="U0BOB", channel=ALERTS, message_ts=root.ts)
        said = await wait_for(lambda: _said_to(h, "U0BOB", seen) or None, timeout=10)
        assert "works again" in said[0]

        def offered() -> Message | None:
            now = h.slack.message(ALERTS, root.ts)
            return now if now is not None and RERUN_MISSED in buttons(now) else None

        healed = await wait_for(offered, timeout=10)
        stale = copy.deepcopy(healed)  # as a screen still showing it would click it, later
        assert buttons(healed)[RERUN_MISSED]["text"]["text"] == "Rerun the 5 missed pushes"
        # A newer push has run since the fix: no "Rerun the newest push" (it would deploy an older
        # commit over it); each missed one only if each commit needs its own run, behind a confirm.
        assert "confirm" in buttons(healed)[RERUN_MISSED] and RERUN_NEWEST not in buttons(healed)
        assert "works again" in everything(healed) and "a push through it started its pipeline" in everything(healed)

        # bob may see but not rerun: told, nothing sent.
        seen = len(h.slack.ephemerals_for("U0BOB"))
        await h.send.block_action(RERUN_MISSED, user="U0BOB", channel=ALERTS, message_ts=root.ts)
        said = await wait_for(lambda: _said_to(h, "U0BOB", seen) or None, timeout=10)
        assert "may not rerun 5 of the missed pushes" in " ".join(said) or "not allowed" in " ".join(said)
        assert h.sim.count("POST", "/codestream/api/git-events/") == 0

        # alice clicks it twice at once: one rerun per missed push, however many clicks.
        await asyncio.gather(
            h.send.block_action(RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=root.ts),
            h.send.block_action(RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=root.ts),
        )

        def tallied() -> list[Message] | None:
            thread = [m for m in h.slack.thread(ALERTS, root.ts)[1:] if "Missed pushes rerun by" in m.text]
            return thread or None

        [tally] = await wait_for(tallied, timeout=30)
        assert "5 started" in tally.text, tally.text
        for event_id in pushed:
            assert h.sim.count("POST", f"/codestream/api/git-events/{event_id}") == 1
        assert h.sim.count("POST", "/codestream/api/git-events/") == 5
        summaries = [m for m in h.slack.thread(ALERTS, root.ts)[1:] if m.user == "U0BOT" and "Rerun" in m.text]
        assert len(summaries) >= 5
        actions = await h.store.actions.list(limit=50)
        assert sorted(a.event_id for a in actions if a.status == "started") == sorted(pushed)  # audited
        # Oldest first, one after the other: the newest commit is the last to start.
        posts = [r.path.rsplit("/", 1)[-1] for r in h.sim.requests if r.method == "POST" and "/git-events/" in r.path]
        assert posts == pushed, posts
        # The alert now says every missed push was rerun, without rerun buttons; a click on the
        # old button (a stale copy) is told nothing is left, and nothing reaches Code Stream.
        after = h.slack.message(ALERTS, root.ts)
        assert after is not None
        assert "every push it missed was rerun" in after.text, after.text
        assert RERUN_MISSED not in buttons(after) and RERUN_NEWEST not in buttons(after)
        seen = len(h.slack.ephemerals_for("U0ALICE"))
        await h.send.block_action(
            RERUN_MISSED,
            buttons(stale)[RERUN_MISSED]["value"],
            user="U0ALICE",
            channel=ALERTS,
            message_ts=root.ts,
            message=stale,
        )
        said = await wait_for(lambda: _said_to(h, "U0ALICE", seen) or None, timeout=10)
        assert "Nothing left to rerun" in said[0], said
        assert h.sim.count("POST", "/codestream/api/git-events/") == 5


async def test_a_push_starting_its_pipeline_shows_the_webhook_works_without_a_click(tmp_path: Path) -> None:
    async with harness_with_config(tmp_path, "", BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1") as h:
        hook = h.sim.webhooks.add("shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci")
        h.sim.webhooks.expire(str(hook["id"]))
        for n in range(3):
            h.sim.webhooks.push(str(hook["id"]), subject=f"push {n}")

        def root() -> Message | None:
            found = [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and not m.thread_ts]
            return found[0] if len(found) == 1 and "3 pushes did not run" in found[0].text else None

        alert = await wait_for(root, timeout=30)
        assert set(buttons(alert)) == {WEBHOOK_CHECK}
        h.sim.webhooks.save(str(hook["id"]), {"refreshToken": "new-token"}, saved_by="fritz@example.com")
        h.sim.webhooks.push(str(hook["id"]), subject="push after the fix")

        def offered() -> Message | None:
            now = h.slack.message(ALERTS, alert.ts)
            return now if now is not None and RERUN_MISSED in buttons(now) else None

        healed = await wait_for(offered, timeout=30)
        assert "Rerun the 3 missed pushes" in everything(healed) and "works again" in everything(healed)
        assert h.sim.count("POST", "/codestream/api/git-events/") == 0  # offered, not done


@pytest.mark.parametrize("kind", ["gerrit", "docker"])
async def test_a_gerrit_or_registry_trigger_failure_names_its_trigger_and_who_can_fix_it(
    tmp_path: Path, kind: str
) -> None:
    async with harness_with_config(tmp_path, "", BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1") as h:
        if kind == "gerrit":
            h.sim.triggers.add_listener("gerrit-main", project="Payments", createdBy="gerd@example.com")
            fields = {"listener": "gerrit-main", "pipeline": "payments-review"}
            label, menu = "Gerrit listener gerrit-main", "Code Stream › Triggers › Gerrit › Listeners"
        else:
            h.sim.triggers.add_registry_webhook(
                "api-images", project="Payments", repoName="payments/api", createdBy="dora@example.com"
            )
            fields = {"repo": "payments/api", "pipeline": "payments-image-ci"}
            label, menu = "Docker registry webhook api-images", "Code Stream › Triggers › Docker Registry › Webhooks"
        event = h.sim.add_event(
            kind, project="Payments", executionStatus=None, message=TRIGGER_FAILURE_MESSAGE, **fields
        )

        def alert() -> Message | None:
            found = [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and str(event["id"]) in everything(m)]
            return found[0] if found else None

        shown = everything(await wait_for(alert, timeout=30))
        assert f"🔌 {label} is not starting {fields['pipeline']}" in shown, shown
        assert menu in shown and "save a new API token" in shown
        assert ("gerd@example.com" if kind == "gerrit" else "dora@example.com") in shown
        assert "codestream_webhook_check" not in shown  # Check again reads git webhooks only: Rerun stays
