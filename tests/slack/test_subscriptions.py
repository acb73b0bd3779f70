"""Subscriptions through signed HTTP: a channel subscribes itself, the running bot's own watcher
routes the next matching failure there on its next cycle (no restart), unsubscribing stops it;
the access action `subscribe` guards it; every change is audited; bad filters get usage errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.errors import UsageError
from bot.core.subscriptions import Filters, parse_filters
from bot.simulator.slack_api import Message, wait_for
from tests.harness import ALERTS, Harness, harness_with_config

PAYMENTS = "C0PAYMENTS"
ONCALL = "<!subteam^S0PAYONCALL|@payments-oncall>"
# A failure of the Marker project goes to #cs-alerts by the file's route: once its alert is
# there, the watcher has polled past everything added before it.
CONFIG = (
    "routes:\n  - match: {project: Marker}\n    channel: C0ALERTS\n  - match: {pipeline: '*-nightly'}\n    drop: true\n"
)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness_with_config(tmp_path, CONFIG, BOT_WATCH_INTERVAL="1") as harness:
        harness.slack.add_channel(PAYMENTS, "payments")
        yield harness


def fail(h: Harness, project: str, pipeline: str = "payments-ci") -> str:
    event = h.sim.add_event("git", executionStatus="FAILED", project=project, pipeline=pipeline, targetBranch="main")
    return str(event["id"])


def event_id(alert: Message) -> str:
    return str((alert.metadata or {}).get("event_payload", {}).get("id"))


def alerts_in(h: Harness, channel: str) -> list[Message]:
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT" and (m.metadata or {}).get("event_payload")]


async def marker_alerted(h: Harness) -> None:
    """Everything added before this is decided: the watcher has posted a later failure."""
    marker = fail(h, "Marker", "marker-ci")
    await wait_for(lambda: any(event_id(m) == marker for m in alerts_in(h, ALERTS)), timeout=20)


async def command(h: Harness, text: str, *, user: str = "U0ALICE", channel: str = PAYMENTS) -> str:
    """Send the command; what the bot answered (to the caller, or in the channel) as JSON text."""
    seen, posted = len(h.slack.responses), len(said_in(h, channel))
    assert (await h.send.slash_command(text, user=user, channel=channel)).status_code == 200
    await wait_for(lambda: len(h.slack.responses) > seen or len(said_in(h, channel)) > posted, timeout=10)
    answers = [r.body for r in h.slack.responses[seen:]] + [m.text for m in said_in(h, channel)[posted:]]
    return json.dumps(answers, ensure_ascii=False)


def said_in(h: Harness, channel: str) -> list[Message]:
    """What the bot said in the channel about subscriptions."""
    return [m for m in h.slack.messages(channel) if m.user == "U0BOT" and "subscribed" in m.text]


async def test_a_channel_subscribes_itself_and_its_failures_land_there_until_it_unsubscribes(h: Harness) -> None:
    await command(h, f"subscribe project:Payments mention:{ONCALL}")
    [said] = await wait_for(lambda: said_in(h, PAYMENTS), timeout=10)
    assert "<@U0ALICE> subscribed this channel to failures of project Payments" in said.text
    assert "unsubscribe 1" in said.text
    # A cycle that read the routes before the subscription may be under way: subscriptions count
    # from the next cycle. Once a later failure is alerted, that cycle is over.
    await marker_alerted(h)
    other = fail(h, "Storefront", "storefront-ci")  # not Payments: not here (and no fallback)
    payments = fail(h, "Payments")
    [alert] = await wait_for(lambda: alerts_in(h, PAYMENTS), timeout=20)  # the bot's own watcher, next cycle
    assert event_id(alert) == payments
    assert "<!subteam^S0PAYONCALL>" in json.dumps(alert.blocks)  # the subscription's mention
    assert all(event_id(m) != other for m in alerts_in(h, ALERTS))
    # A nightly pipeline of Payments is dropped by the file's rule, which comes first.
    fail(h, "Payments", "payments-nightly")
    await marker_alerted(h)
    assert len(alerts_in(h, PAYMENTS)) == 1

    listing = await command(h, "subscriptions")
    assert "*#1* failures of project Payments, mentioning <!subteam^S0PAYONCALL>" in listing
    listing_alerts = await command(h, "subscriptions", channel=ALERTS)  # the file's route to #cs-alerts
    assert "routes[0]: project=Marker" in listing_alerts and "no subscriptions of its own" in listing_alerts

    await command(h, "unsubscribe 1")
    await wait_for(lambda: [m for m in h.slack.messages(PAYMENTS) if "unsubscribed" in m.text], timeout=10)
    await marker_alerted(h)  # the next cycle, which reads the routes again
    fail(h, "Payments")
    await marker_alerted(h)
    assert len(alerts_in(h, PAYMENTS)) == 1  # it stopped
    rows = await h.store.actions.list()
    trail = sorted((r.action, r.actor_id, r.channel_id, r.event_id, r.project) for r in rows if "subscribe" in r.action)
    assert trail == [
        ("subscribe", "U0ALICE", PAYMENTS, "#1", "Payments"),
        ("unsubscribe", "U0ALICE", PAYMENTS, "#1", "Payments"),
    ]
    assert await h.store.subscriptions.live() == []  # removed, kept only for the record
    record = await h.store.subscriptions.get(1)
    assert record is not None and record.removed_by == "U0ALICE" and record.created_by == "U0ALICE"


async def test_subscribing_twice_makes_one_and_unsubscribe_is_scoped_to_the_channel(h: Harness) -> None:
    await command(h, "subscribe kind:git project:Payments branch:release/*")
    answer = await command(h, "subscribe kind:git  project:Payments branch:release/*")
    assert "already has that subscription: *#1*" in answer
    assert [s.id for s in await h.store.subscriptions.live(PAYMENTS)] == [1]
    answer = await command(h, "unsubscribe 1", channel=ALERTS)  # another channel's: not from here
    assert "This channel has no subscription #1" in answer
    assert [s.id for s in await h.store.subscriptions.live(PAYMENTS)] == [1]
    assert "Usage: `/codestream unsubscribe &lt;n&gt;`" in await command(h, "unsubscribe one")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("subscribe Payments", "`Payments` is not a filter: write name:value"),
        ("subscribe team:Payments", "`team` is not a filter; use kind, project"),
        ("subscribe kind:svn", "`kind` must be git, gerrit, docker or approval (got `svn`)"),
        ("subscribe project:A project:B", "`project` is given twice"),
        ("subscribe pipeline:", "`pipeline:` needs a value"),
        ('subscribe project:"Team A', "A quote is not closed"),
        ("subscribe mention:@nobody", "Slack did not turn `@nobody` into a user group"),
        ("subscribe mention:<!here>", "broadcast mentions such as @here"),
    ],
)
async def test_bad_filters_get_a_usage_error_and_add_nothing(h: Harness, text: str, says: str) -> None:
    answer = await command(h, text)
    assert says in answer and "Usage: `/codestream subscribe" in answer
    assert await h.store.subscriptions.live() == []


def test_filters_parse_quotes_slack_escapes_and_ids() -> None:
    assert parse_filters(["project:“Team", "A”", "repo:R&amp;D", "kind:Approval", "mention:S0ONCALL"]) == Filters(
        kind="approval", project="Team A", repo="R&D", mention="<!subteam^S0ONCALL>"
    )
    assert parse_filters(["mention:<@U0ALICE|alice>"]).mention == "<@U0ALICE>"
    assert parse_filters([]) == Filters()  # every failure, to this channel
    with pytest.raises(UsageError):
        parse_filters(["branch:" + "x" * 201])


@pytest.fixture
async def policy(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        CONFIG + "access:\n  rules:\n"
        "    - users: [U0ALICE]\n      actions: [show, subscribe]\n      projects: [Payments]\n"
        "      channels: [C0PAYMENTS]\n"
        "    - users: [U0BOB]\n"  # every verb, but not subscribe: it must be named
    )
    async with harness_with_config(tmp_path, config, BOT_WATCH_INTERVAL="1") as harness:
        harness.slack.add_channel(PAYMENTS, "payments")
        yield harness


async def test_the_access_action_subscribe_is_needed_scoped_by_channel_and_project(policy: Harness) -> None:
    h = policy
    refused = await command(h, "subscribe project:Payments", user="U0BOB")
    assert "No access rule allows subscribe" in refused or "may subscribe" in refused, refused
    refused = await command(h, "subscribe", user="U0ALICE")  # every project: beyond her rule
    assert "subscribe" in refused and await h.store.subscriptions.live() == []
    refused = await command(h, "subscribe project:Payments", user="U0ALICE", channel=ALERTS)  # not her channel
    assert await h.store.subscriptions.live() == []
    await command(h, "subscribe project:Payments", user="U0ALICE")
    assert [(s.channel_id, s.project) for s in await h.store.subscriptions.live()] == [(PAYMENTS, "Payments")]
    assert "refused" not in refused
    denied = [r for r in await h.store.actions.list() if r.action == "subscribe" and r.status == "denied"]
    assert sorted(r.actor_id for r in denied) == ["U0ALICE", "U0ALICE", "U0BOB"]
    # Bob, who may not subscribe, may not remove hers either; whoami names the action.
    assert "subscribe" in await command(h, "unsubscribe 1", user="U0BOB")
    assert len(await h.store.subscriptions.live()) == 1
    assert "*subscribe*" in await command(h, "whoami", user="U0ALICE")


async def test_a_subscription_a_file_rule_takes_first_is_said_with_a_warning(tmp_path: Path) -> None:
    config = "routes:\n  - match: {kind: docker}\n    channel: C0OTHER\n"
    async with harness_with_config(tmp_path, config) as h:
        h.slack.add_channel(PAYMENTS, "payments")
        await command(h, "subscribe kind:docker project:Platform")
        [said] = await wait_for(lambda: said_in(h, PAYMENTS), timeout=10)
        warning = json.dumps(said.blocks)
        assert "BOT_CONFIG routes[0] (kind=docker) comes first and sends them to <#C0OTHER>" in warning


async def test_a_pipeline_pattern_cannot_reach_past_a_rule_limited_to_pipelines(tmp_path: Path) -> None:
    """Found by review: `pipeline:*[!pay]` passed a `*pay*` rule (the rule was matched against
    the pattern's text) and then routed every other team's failures here."""
    config = (
        CONFIG + "access:\n  rules:\n"
        '    - users: [U0ALICE]\n      actions: [show, subscribe]\n      pipelines: ["*pay*", "ops-?"]\n'
    )
    async with harness_with_config(tmp_path, config, BOT_WATCH_INTERVAL="1") as h:
        h.slack.add_channel(PAYMENTS, "payments")
        refused = await command(h, "subscribe pipeline:*[!pay]")
        assert "`*` only" in refused
        refused = await command(h, "subscribe pipeline:ops-*")  # `ops-?` allows ops-1, not ops-anything
        assert "subscribe" in refused and await h.store.subscriptions.live() == []
        await command(h, "subscribe pipeline:payments-*")  # within `*pay*`: allowed
        assert [s.pipeline for s in await h.store.subscriptions.live()] == ["payments-*"]


async def test_subscribing_where_another_channel_already_gets_those_failures_says_so(h: Harness) -> None:
    team = "C0PAYTEAM"
    h.slack.add_channel(team, "payments-team")
    await command(h, "subscribe project:Payments", channel=team)
    await command(h, "subscribe project:Payments pipeline:* repo:* branch:*")
    said = json.dumps(said_in(h, PAYMENTS)[-1].blocks, ensure_ascii=False)
    # Told where the failures both match go: to the older, equally specific subscription.
    assert f"<#{team}>'s *#1*" in said and "names as much and is older" in said
    await marker_alerted(h)
    payments = fail(h, "Payments")
    await wait_for(lambda: any(event_id(m) == payments for m in alerts_in(h, team)), timeout=20)
    assert alerts_in(h, PAYMENTS) == []


async def test_a_negated_class_in_a_rule_does_not_admit_a_pattern_it_does_not_contain(tmp_path: Path) -> None:
    """Found by review: a rule `pipelines: ["[!x]*"]` admitted `subscribe pipeline:*y`, which then
    routed pipeline `xy` (which the rule denies) to the channel."""
    config = (
        CONFIG + "access:\n  rules:\n"
        '    - users: [U0ALICE]\n      actions: [show, subscribe]\n      pipelines: ["[!x]*"]\n'
    )
    async with harness_with_config(tmp_path, config, BOT_WATCH_INTERVAL="1") as h:
        h.slack.add_channel(PAYMENTS, "payments")
        refused = await command(h, "subscribe pipeline:*y")
        assert "subscribe" in refused and await h.store.subscriptions.live() == []
        await command(h, "subscribe pipeline:ay")  # one name the rule allows: allowed
        assert [s.pipeline for s in await h.store.subscriptions.live()] == ["ay"]
