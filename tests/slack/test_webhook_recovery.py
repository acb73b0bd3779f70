"""When a broken git webhook counts as working again, and what its alert then offers — the cases
a hostile review found: saved again with no push since (the newest push is offered), a push made
before the failure whose run ends later (not a sign of anything), a push failing in its pipeline
after the fix (it was started: the webhook works), a webhook deleted and created again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.webhook_alert import ACTION_RERUN_MISSED, ACTION_RERUN_NEWEST, ACTION_WEBHOOK_CHECK
from tests.harness import ALERTS, Harness, buttons, everything, harness_with_config

HOOK = {"project": "Storefront", "repoName": "storefront", "pipeline": "storefront-ci"}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness_with_config(tmp_path, "", BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1") as harness:
        yield harness


async def broken(h: Harness, pushes: int) -> tuple[str, list[str], Message]:
    """A webhook whose token expired, ``pushes`` pushes through it, and their one alert."""
    hook = str(h.sim.webhooks.add("shop-main", **HOOK)["id"])
    h.sim.webhooks.expire(hook)
    ids = [str(h.sim.webhooks.push(hook, subject=f"push {n}")["id"]) for n in range(pushes)]

    def alert() -> Message | None:
        roots = [m for m in h.slack.messages(ALERTS) if m.user == "U0BOT" and not m.thread_ts]
        return roots[0] if len(roots) == 1 and f"{pushes} pushes did not run" in roots[0].text else None

    return hook, ids, await wait_for(alert, timeout=30)


def current(h: Harness, alert: Message) -> Message:
    message = h.slack.message(ALERTS, alert.ts)
    assert message is not None
    return message


async def test_saved_with_no_push_since_offers_the_newest_push_and_reruns_only_it(h: Harness) -> None:
    hook, ids, alert = await broken(h, 3)
    h.sim.webhooks.save(hook, {"refreshToken": "new-token"}, saved_by="fritz@example.com")
    await h.send.block_action(ACTION_WEBHOOK_CHECK, user="U0ALICE", channel=ALERTS, message_ts=alert.ts)
    healed: bool = await wait_for(lambda: ACTION_RERUN_NEWEST in buttons(current(h, alert)) or None, timeout=15)
    assert healed and "saved again by fritz@example.com" in everything(current(h, alert))
    assert ACTION_RERUN_MISSED in buttons(current(h, alert))  # "Rerun the 3 missed pushes" too
    await h.send.block_action(ACTION_RERUN_NEWEST, user="U0ALICE", channel=ALERTS, message_ts=alert.ts)
    await wait_for(lambda: h.sim.count("POST", "/codestream/api/git-events/") == 1 or None, timeout=15)
    assert h.sim.count("POST", f"/codestream/api/git-events/{ids[-1]}") == 1  # the newest only
    # The alert now counts the two older ones left.
    await wait_for(lambda: "2 pushes of storefront-ci did not run" in current(h, alert).text or None, timeout=15)


async def test_a_push_from_before_the_failure_ending_later_is_no_sign_the_webhook_works(h: Harness) -> None:
    hook = str(h.sim.webhooks.add("shop-main", **HOOK)["id"])
    before = h.sim.webhooks.push(hook, subject="before the expiry", executionStatus="RUNNING")
    h.sim.webhooks.expire(hook)
    for n in range(2):
        h.sim.webhooks.push(hook, subject=f"push {n}")
    alert = await wait_for(
        lambda: next((m for m in h.slack.messages(ALERTS) if "2 pushes did not run" in m.text), None), timeout=30
    )
    # The old push's run ends now (as after an approval): its event changes, the watcher sees it.
    h.sim.set_execution_status(str(before["executionLink"]).rsplit("/", 1)[-1], "COMPLETED")
    polls = h.sim.count("GET", "/codestream/api/git-events")
    await wait_for(lambda: h.sim.count("GET", "/codestream/api/git-events") >= polls + 3 or None, timeout=20)
    assert set(buttons(current(h, alert))) == {ACTION_WEBHOOK_CHECK}, everything(current(h, alert))


async def test_a_push_failing_in_its_pipeline_after_the_fix_shows_the_webhook_works(h: Harness) -> None:
    hook, _, alert = await broken(h, 2)
    h.sim.webhooks.save(hook, {"refreshToken": "new-token"}, saved_by="fritz@example.com")
    h.sim.webhooks.push(hook, subject="after the fix, with a failing test", executionStatus="FAILED")

    def working() -> bool:
        now = current(h, alert)
        return "works again" in now.text and ACTION_RERUN_MISSED in buttons(now)

    await wait_for(working, timeout=30)
    assert "not starting" not in current(h, alert).text


async def test_a_webhook_deleted_and_created_again_counts_as_fixed(h: Harness) -> None:
    hook, _, alert = await broken(h, 2)
    del h.sim.webhooks.docs[hook]  # the fix for a changed Git endpoint: a new webhook, a new id
    again = str(h.sim.webhooks.add("shop-main", **HOOK)["id"])
    h.sim.webhooks.push(again, subject="through the new webhook")
    await wait_for(lambda: ACTION_RERUN_MISSED in buttons(current(h, alert)) or None, timeout=30)
    await h.send.block_action(ACTION_RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=alert.ts)
    await wait_for(lambda: h.sim.count("POST", "/codestream/api/git-events/") == 2 or None, timeout=20)
