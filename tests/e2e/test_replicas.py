"""Several replicas on one PostgreSQL: every guarantee holds across processes — one POST per
intent, one alert per failure, each execution followed to its end even when a replica dies."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from bot.core.liveness import holder_pid
from bot.simulator import SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import Message, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.digest import ACTION_RERUN_ALL, METADATA_DIGEST_TYPE
from bot.slack.render.messages import METADATA_EVENT_TYPE
from bot.store import ActionRecord, Store, open_store
from tests.conftest import needs_postgres
from tests.harness import wait_for_async
from tests.replicas import Cluster, cluster

pytestmark = [needs_postgres, pytest.mark.slow]
T = TypeVar("T")
ALERTS = "C0ALERTS"


def alerts_by_event(group: Cluster) -> dict[str, list[Message]]:
    found: dict[str, list[Message]] = {}
    for message in group.slack.messages(ALERTS):
        meta = message.metadata or {}
        if message.user == "U0BOT" and meta.get("event_type") == METADATA_EVENT_TYPE and not message.thread_ts:
            found.setdefault(meta["event_payload"]["id"], []).append(message)
    return found


def rerun_value(alert: Message) -> str:
    return str(
        next(
            e["value"]
            for b in alert.blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ACTION_RERUN
        )
    )


async def test_one_alert_per_failure_and_one_post_per_click_across_replicas(tmp_path: Path) -> None:
    # Digests off: this is about single alerts (a storm's digest across replicas is tested below).
    async with cluster(
        tmp_path, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1", BOT_WATCH_LOOKBACK="86400", BOT_DIGEST_THRESHOLD="0"
    ) as group:
        a, b = group.replicas
        assert a.send is not None and b.send is not None
        new = [
            group.sim.add_event("git", pipeline=f"svc-{n}-ci", project="Payments", executionStatus="FAILED")["id"]
            for n in range(20)
        ]
        expected = set(new) | {SAMPLE_FAILED_GIT_ID}
        await wait_for(lambda: expected <= set(alerts_by_event(group)), timeout=30)
        # A few more polls by both watchers change nothing.
        polls = group.sim.count("GET", "/codestream/api/git-events")
        await wait_for(lambda: group.sim.count("GET", "/codestream/api/git-events") >= polls + 3, timeout=30)
        alerts = alerts_by_event(group)
        assert all(len(alerts[event_id]) == 1 for event_id in expected), {k: len(v) for k, v in alerts.items()}

        [alert] = alerts[SAMPLE_FAILED_GIT_ID]
        value = rerun_value(alert)
        await asyncio.gather(
            a.send.block_action(ACTION_RERUN, value, user="U0ALICE", channel=ALERTS, message_ts=alert.ts),
            b.send.block_action(ACTION_RERUN, value, user="U0ALICE", channel=ALERTS, message_ts=alert.ts),
            b.send.block_action(ACTION_RERUN, value, user="U0ALICE", channel=ALERTS, message_ts=alert.ts, retry=1),
            a.send.block_action(ACTION_RERUN, value, user="U0BOB", channel=ALERTS, message_ts=alert.ts),
        )
        summaries = await wait_for(
            lambda: [m for m in group.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"], timeout=15
        )
        await wait_for(lambda: len(group.slack.ephemerals) == 3, timeout=15)  # the three others told who won
        assert group.sim.count("POST", f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}") == 1
        assert len(summaries) == 1


def digest_rows(group: Cluster) -> dict[str, list[Message]]:
    """Failures listed in storm digests (from each row's menu), by event id."""
    found: dict[str, list[Message]] = {}
    for message in group.slack.messages(ALERTS):
        if (message.metadata or {}).get("event_type") != METADATA_DIGEST_TYPE or message.thread_ts:
            continue
        for event_id in re.findall(r'"rerun\|git\|([0-9a-f-]{36})\|', json.dumps(message.blocks)):
            found.setdefault(event_id, []).append(message)
    return found


async def test_a_storm_is_listed_once_across_replicas_and_rerun_all_on_both_runs_each_once(tmp_path: Path) -> None:
    async with cluster(tmp_path, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="1", BOT_WATCH_LOOKBACK="60") as group:
        a, b = group.replicas
        assert a.send is not None and b.send is not None
        new = {str(e["id"]) for e in group.sim.fail_burst(15, project="Payments")}
        listed = await wait_for(lambda: (rows := digest_rows(group)) and new <= set(rows) and rows, timeout=30)
        assert all(len(listed[event_id]) == 1 for event_id in new)  # each failure in one digest, once
        assert not new & set(alerts_by_event(group))  # and never alerted alone besides
        [digest] = {m.ts: m for ms in listed.values() for m in ms}.values()
        await asyncio.gather(
            a.send.block_action(ACTION_RERUN_ALL, user="U0ALICE", channel=ALERTS, message_ts=digest.ts),
            b.send.block_action(ACTION_RERUN_ALL, user="U0BOB", channel=ALERTS, message_ts=digest.ts),
        )

        def posts() -> int:
            return sum(group.sim.count("POST", f"/codestream/api/git-events/{e}") for e in new)

        await wait_for(lambda: posts() >= 15, timeout=30)
        said = lambda: any("asked Code Stream" in m.text for m in group.slack.thread(ALERTS, digest.ts))  # noqa: E731
        await wait_for(said, timeout=30)
        assert posts() == 15 and all(group.sim.count("POST", f"/codestream/api/git-events/{e}") == 1 for e in new)


async def test_a_replica_dying_mid_tracking_leaves_the_follow_through_to_another(tmp_path: Path) -> None:
    async with cluster(
        tmp_path,
        BOT_ALERT_CHANNEL=ALERTS,
        BOT_WATCH_INTERVAL="1",
        BOT_WATCH_LOOKBACK="86400",
        BOT_FOLLOW_LEASE_SECONDS="3",
    ) as group:
        alert = (await wait_for(lambda: alerts_by_event(group).get(SAMPLE_FAILED_GIT_ID), timeout=30))[0]
        store = await open_store(group.database_url)
        try:
            holder = await wait_for_async(lambda: store.liveness.lease_holder("followups"))
            pid = holder_pid(holder[0])
            tracking = next(r for r in group.replicas if r.proc.pid == pid)
            other = next(r for r in group.replicas if r is not tracking)
            assert other.send is not None
            await other.send.block_action(
                ACTION_RERUN, rerun_value(alert), user="U0ALICE", channel=ALERTS, message_ts=alert.ts
            )
            [summary] = await wait_for(
                lambda: [m for m in group.slack.thread(ALERTS, alert.ts)[1:] if m.user == "U0BOT"], timeout=15
            )
            await wait_for_async(store.followups.active_count)
            await tracking.kill()  # the replica polling executions dies without a word
            final = await wait_for(
                lambda: (m := group.slack.message(ALERTS, summary.ts)) is not None and "COMPLETED" in m.text and m,
                timeout=45,
            )
            assert final
            fixed: bool = await wait_for(
                lambda: "Fixed by" in json.dumps((group.slack.message(ALERTS, alert.ts) or alert).blocks), timeout=15
            )
            assert fixed
            new_holder = await store.liveness.lease_holder("followups")
            assert new_holder is not None and new_holder[0] != holder[0]
        finally:
            await store.close()


@pytest.mark.timeout(420)  # its own waits allow a loaded machine up to 240 s for the rows
async def test_exactly_once_under_load_200_intents_each_delivered_3_times(tmp_path: Path) -> None:
    async with cluster(tmp_path) as group:
        a, b = group.replicas
        assert a.send is not None and b.send is not None
        events = [group.sim.add_event("git", executionStatus="FAILED")["id"] for _ in range(200)]
        gate = asyncio.Semaphore(48)

        async def deliver(sender_index: int, event_id: str) -> int:
            sender = (a.send, b.send)[sender_index]
            assert sender is not None
            async with gate:
                for _ in range(2):
                    try:
                        return (await sender.slash_command(f"rerun {event_id}", user="U0ALICE")).status_code
                    except httpx.TransportError:
                        # On a loaded machine a delivery can lose its connection; the person types
                        # the command again (a new request, not a retry): still one run per event.
                        continue
                return (await sender.slash_command(f"rerun {event_id}", user="U0ALICE")).status_code

        deliveries = [deliver(i % 2, event_id) for event_id in events for i in range(3)]
        statuses = await asyncio.gather(*deliveries)
        assert set(statuses) == {200}
        # Every delivery ends in an audit row (started, duplicate, or why not): wait for all 600
        # to be settled (a POST whose answer was late is read back first), however long a loaded
        # machine takes, then say what they are.
        store = await open_store(group.database_url)
        try:
            rows = await wait_for_async(lambda: _rows_when(store, 600), within=240)
        finally:
            await store.close()
        ended = sorted(r.status for r in rows)
        assert ended.count("started") == 200, {status: ended.count(status) for status in set(ended)}
        assert group.sim.count("POST", "/codestream/api/git-events/") == 200
        for event_id in events:
            assert group.sim.count("POST", f"/codestream/api/git-events/{event_id}") == 1


async def _rows_when(store: Store, n: int) -> list[ActionRecord] | None:
    rows = await store.actions.list(limit=1000)
    return rows if len(rows) >= n and all(r.finished_at is not None for r in rows) else None


async def test_a_run_form_submitted_on_both_replicas_and_a_step_delivered_to_both_run_once(tmp_path: Path) -> None:
    async with cluster(tmp_path, BOT_ALERT_CHANNEL=ALERTS, BOT_WATCH_INTERVAL="30") as group:
        a, b = group.replicas
        assert a.send is not None and b.send is not None
        await a.send.slash_command("run deploy-api version=2.4.1", user="U0ALICE", channel=ALERTS)
        await wait_for(lambda: group.slack.views or None, timeout=15)
        opened = group.slack.views[-1]
        view = {**opened["view"], "id": opened["id"]}
        values = {
            "input:env": {"value": {"type": "plain_text_input", "value": "prod"}},
            "input:version": {"value": {"type": "plain_text_input", "value": "2.4.1"}},
        }
        await asyncio.gather(
            a.send.view_submission(view, "U0ALICE", values=values),
            b.send.view_submission(view, "U0ALICE", values=values),
            b.send.view_submission(view, "U0ALICE", values=values, retry=1),
        )
        ran = await wait_for(
            lambda: [m for m in group.slack.messages(ALERTS) if m.user == "U0BOT" and " ran " in m.text] or None,
            timeout=15,
        )
        inputs = {"pipeline": "nightly-report", "user": {"id": "U0ALICE"}}
        await asyncio.gather(
            a.send.function_executed("run_pipeline", inputs, execution_id="Fx0BOTH"),
            b.send.function_executed("run_pipeline", inputs, execution_id="Fx0BOTH"),
        )
        step = group.slack.function_executions["Fx0BOTH"]
        await wait_for(lambda: step["state"] != "running" or None, timeout=15)
        assert step["state"] == "completed", step
        runs = [r.path for r in group.sim.requests if r.method == "POST" and "/pipelines/" in r.path]
        assert len(runs) == 2 and len(set(runs)) == 2  # one deploy-api run, one nightly-report run
        assert len(ran) == 1
