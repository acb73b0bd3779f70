"""Subscriptions across replicas on one PostgreSQL: a channel subscribes through one replica, the
other replica's watcher routes by it on its next cycle, and whichever replica takes the watcher
over afterwards does too; an unsubscribe through either stops it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.liveness import holder_pid
from bot.simulator.slack_api import Message, wait_for
from bot.store import open_store
from tests.conftest import needs_postgres
from tests.harness import wait_for_async
from tests.replicas import Cluster, Replica, cluster

pytestmark = [needs_postgres, pytest.mark.slow]
ALERTS = "C0ALERTS"
PAYMENTS = "C0PAYMENTS"
CONFIG = "routes:\n  - match: {project: Marker}\n    channel: C0ALERTS\n"


def alerts_in(group: Cluster, channel: str) -> list[Message]:
    return [m for m in group.slack.messages(channel) if m.user == "U0BOT" and (m.metadata or {}).get("event_payload")]


def event_id(alert: Message) -> str:
    return str((alert.metadata or {}).get("event_payload", {}).get("id"))


def fail(group: Cluster, project: str, pipeline: str) -> str:
    return str(group.sim.add_event("git", executionStatus="FAILED", project=project, pipeline=pipeline)["id"])


async def marker_alerted(group: Cluster) -> None:
    """A cycle that read the routes before this point is over once a later failure is alerted."""
    marker = fail(group, "Marker", "marker-ci")
    await wait_for(lambda: any(event_id(m) == marker for m in alerts_in(group, ALERTS)), timeout=30)


async def leader_and_other(group: Cluster) -> tuple[Replica, Replica]:
    store = await open_store(group.database_url)
    try:
        holder = await wait_for_async(lambda: store.liveness.lease_holder("watcher"), within=30)
    finally:
        await store.close()
    pid = holder_pid(holder[0])
    leader = next(r for r in group.replicas if r.proc.pid == pid)
    return leader, next(r for r in group.replicas if r is not leader)


async def test_a_subscription_made_on_one_replica_routes_on_the_other(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(CONFIG)
    async with cluster(tmp_path, BOT_CONFIG=str(config), BOT_WATCH_INTERVAL="1") as group:
        group.slack.add_channel(PAYMENTS, "payments")
        await marker_alerted(group)
        leader, other = await leader_and_other(group)
        assert other.send is not None
        # Subscribed through the replica that is not watching.
        await other.send.slash_command("subscribe project:Payments", user="U0ALICE", channel=PAYMENTS)
        await wait_for(lambda: [m for m in group.slack.messages(PAYMENTS) if "subscribed" in m.text], timeout=15)
        await marker_alerted(group)
        first = fail(group, "Payments", "payments-ci")
        await wait_for(lambda: [m for m in alerts_in(group, PAYMENTS) if event_id(m) == first], timeout=30)
        # The watching replica dies; the other takes the watcher over and routes by it too.
        await leader.kill()
        await wait_for_async(lambda: _held_by(group, other), within=30)
        second = fail(group, "Payments", "payments-ci")
        await wait_for(lambda: [m for m in alerts_in(group, PAYMENTS) if event_id(m) == second], timeout=30)
        await other.send.slash_command("unsubscribe 1", user="U0ALICE", channel=PAYMENTS)
        await wait_for(lambda: [m for m in group.slack.messages(PAYMENTS) if "unsubscribed" in m.text], timeout=15)
        await marker_alerted(group)
        fail(group, "Payments", "payments-ci")
        await marker_alerted(group)
        assert len(alerts_in(group, PAYMENTS)) == 2  # one per failure while subscribed, none after


async def _held_by(group: Cluster, replica: Replica) -> bool:
    store = await open_store(group.database_url)
    try:
        holder = await store.liveness.lease_holder("watcher")
    finally:
        await store.close()
    return holder is not None and holder_pid(holder[0]) == replica.proc.pid
