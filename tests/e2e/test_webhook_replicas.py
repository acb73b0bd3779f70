"""A broken git webhook across two replicas (real processes, one PostgreSQL): five pushes through
it are one alert with Check again and no Rerun; once it is saved and a push starts its pipeline,
"Rerun the 5 missed pushes" clicked on both replicas at once (and a Slack retry) reruns each
missed push exactly once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.webhook_alert import ACTION_RERUN_MISSED, ACTION_WEBHOOK_CHECK
from tests.conftest import needs_postgres
from tests.harness import buttons
from tests.replicas import cluster

pytestmark = [needs_postgres, pytest.mark.slow]

ALERTS = "C0ALERTS"


async def test_the_missed_pushes_of_a_webhook_run_once_across_replicas(tmp_path: Path) -> None:
    async with cluster(tmp_path, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1", BOT_DIGEST_THRESHOLD="0") as group:
        a, b = group.replicas
        assert a.send is not None and b.send is not None
        hook = group.sim.webhooks.add(
            "shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci"
        )
        hook_id = str(hook["id"])
        group.sim.webhooks.expire(hook_id)
        pushed = [str(group.sim.webhooks.push(hook_id, subject=f"push {n}")["id"]) for n in range(5)]

        def alert() -> Message | None:
            found = [m for m in group.slack.messages(ALERTS) if m.user == "U0BOT" and "storefront-ci" in m.text]
            roots = [m for m in found if not m.thread_ts]
            return roots[0] if len(roots) == 1 and "5 pushes did not run" in roots[0].text else None

        root = await wait_for(alert, timeout=60)
        assert set(buttons(root)) == {ACTION_WEBHOOK_CHECK}

        group.sim.webhooks.save(hook_id, {"refreshToken": "new-token"}, saved_by="fritz@example.com")
        group.sim.webhooks.push(hook_id, subject="push after the fix")
        await a.send.block_action(ACTION_WEBHOOK_CHECK, user="U0ALICE", channel=ALERTS, message_ts=root.ts)

        def offered() -> Message | None:
            now = group.slack.message(ALERTS, root.ts)
            return now if now is not None and ACTION_RERUN_MISSED in buttons(now) else None

        healed = await wait_for(offered, timeout=30)
        assert "Rerun the 5 missed pushes" in json.dumps(healed.blocks)
        await asyncio.gather(
            a.send.block_action(ACTION_RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=root.ts),
            b.send.block_action(ACTION_RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=root.ts),
            b.send.block_action(ACTION_RERUN_MISSED, user="U0ALICE", channel=ALERTS, message_ts=root.ts, retry=1),
        )

        def tallies() -> list[Message] | None:
            found = [m for m in group.slack.thread(ALERTS, root.ts)[1:] if "Missed pushes rerun by" in m.text]
            return found or None

        [tally] = await wait_for(tallies, timeout=60)
        assert "5 started" in tally.text, tally.text
        assert group.sim.count("POST", "/codestream/api/git-events/") == 5
        for event_id in pushed:
            assert group.sim.count("POST", f"/codestream/api/git-events/{event_id}") == 1

        # The other click was told (the batch in hand, or, if it came after, already rerun), to
        # the person alone; nothing more reaches Code Stream.
        def told() -> bool:
            return any("Already in hand" in m.text or "Nothing left to rerun" in m.text for m in group.slack.ephemerals)

        await wait_for(told, timeout=30)
        assert len(tallies() or []) == 1
        assert group.sim.count("POST", "/codestream/api/git-events/") == 5
