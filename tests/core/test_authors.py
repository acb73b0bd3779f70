"""Who to ask: with BOT_MENTION_AUTHOR the alert mentions the person who pushed — found in the
``people:`` map of BOT_CONFIG, else by e-mail in Slack — and a lookup that finds nobody or fails
means no mention, never a missing alert. Through the real watcher, simulator and Slack stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.runtime import Runtime, build_runtime
from bot.app.settings import load_settings
from bot.core.fileconfig import parse_file_config
from bot.core.people import owner_keys
from bot.core.routing import Router
from bot.core.watcher import WatchTiming
from bot.errors import ConfigError
from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import Message, SlackStandIn
from bot.slack.delivery import Delivery
from bot.slack.manifest import manifest
from tests.conftest import FAST_RETRY
from tests.harness import ALERTS, BOT_TOKEN, bot_env, fast_pacing

PEOPLE = "people:\n  Alex Chen: U0ALEX\n  ops@example.com: U0OPS\n"


@pytest.fixture
async def services() -> AsyncIterator[tuple[CodeStreamSimulator, SlackStandIn]]:
    async with CodeStreamSimulator(seed=False) as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        slack.add_user("U0ALEX", "alex", "Alex Chen", email="alex.chen@corp.example")
        slack.add_user("U0SAM", "sam", "Sam Okafor", email="sam.okafor@example.com")
        yield sim, slack


async def runtime(services: tuple[CodeStreamSimulator, SlackStandIn], tmp_path: Path, **env: str) -> Runtime:
    sim, slack = services
    config = tmp_path / "bot.yaml"
    config.write_text(PEOPLE)
    settings = load_settings(bot_env(sim, slack, tmp_path, BOT_CONFIG=str(config), **env))
    return await build_runtime(settings, retry=FAST_RETRY)


async def alert_for(rt: Runtime, slack: SlackStandIn, sim: CodeStreamSimulator, owner: str) -> Message:
    sim.add_event("git", executionStatus="FAILED", owner=owner)
    delivery = Delivery(AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url), fast_pacing())
    seen = len(slack.messages(ALERTS))
    stats = await rt.watcher(Router(fallback=ALERTS), delivery, timing=WatchTiming(30, 900)).poll_once()
    assert stats.alerts_posted == 1
    return slack.messages(ALERTS)[seen]


def lead(message: Message) -> str:
    return str(message.blocks[1]["text"]["text"])


async def test_off_by_default_nobody_is_mentioned_and_slack_is_not_asked(
    services: tuple[CodeStreamSimulator, SlackStandIn], tmp_path: Path
) -> None:
    sim, slack = services
    rt = await runtime(services, tmp_path)
    try:
        message = await alert_for(rt, slack, sim, "Alex Chen")
        assert "<@U0ALEX>" not in lead(message) and not slack.calls_to("users.lookupByEmail")
    finally:
        await rt.close()


async def test_the_people_map_then_slack_by_email_finds_who_pushed(
    services: tuple[CodeStreamSimulator, SlackStandIn], tmp_path: Path
) -> None:
    sim, slack = services
    rt = await runtime(services, tmp_path, BOT_MENTION_AUTHOR="true")
    try:
        by_name = await alert_for(rt, slack, sim, "Alex Chen")  # the map, by name
        assert lead(by_name).startswith("<@U0ALEX> ") and "<@U0ALEX>" in by_name.text
        by_map_email = await alert_for(rt, slack, sim, "Ops Robot <OPS@example.com>")  # the map, by e-mail
        assert lead(by_map_email).startswith("<@U0OPS> ")
        assert not slack.calls_to("users.lookupByEmail")
        by_slack = await alert_for(rt, slack, sim, "Sam Okafor <sam.okafor@example.com>")  # Slack, by e-mail
        assert lead(by_slack).startswith("<@U0SAM> ")
        again = await alert_for(rt, slack, sim, "Sam Okafor <sam.okafor@example.com>")
        assert lead(again).startswith("<@U0SAM> ")
        assert len(slack.calls_to("users.lookupByEmail")) == 1  # cached
    finally:
        await rt.close()


async def test_an_author_nobody_knows_or_a_failing_lookup_means_no_mention(
    services: tuple[CodeStreamSimulator, SlackStandIn], tmp_path: Path
) -> None:
    sim, slack = services
    rt = await runtime(services, tmp_path, BOT_MENTION_AUTHOR="true")
    try:
        unknown = await alert_for(rt, slack, sim, "Pat Doe <pat@elsewhere.example>")
        assert "<@" not in lead(unknown)
        no_email = await alert_for(rt, slack, sim, "jenkins")
        assert "<@" not in lead(no_email)
        slack.add_user("U0KIM", "kim", "Kim Lee", email="kim@corp.example")
        slack.fail("users.lookupByEmail", error="ratelimited", status=429, times=None)
        failing = await alert_for(rt, slack, sim, "Kim Lee <kim@corp.example>")
        assert "<@" not in lead(failing) and failing.blocks  # the alert is there, without a mention
        slack.clear_faults()
        later = await alert_for(rt, slack, sim, "Kim Lee <kim@corp.example>")  # not cached as "nobody"
        assert lead(later).startswith("<@U0KIM> ")
    finally:
        await rt.close()


def test_owner_keys_read_names_and_emails() -> None:
    assert owner_keys("Sam Okafor <Sam.Okafor@Example.com>") == ("sam.okafor@example.com", "sam okafor")
    assert owner_keys("alice") == (None, "alice")
    assert owner_keys("bob@example.com") == ("bob@example.com", None)


def test_the_people_map_is_validated() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_file_config("people:\n  Alex Chen: alex\n")
    assert "BOT_CONFIG people: 'Alex Chen' must map to a Slack user id such as U012AB3CD" in str(caught.value)
    with pytest.raises(ConfigError, match="must be a mapping of a name or e-mail"):
        parse_file_config("people: [U0ALEX]\n")
    with pytest.raises(ConfigError, match="appears twice"):
        parse_file_config("people:\n  Alex Chen: U0ALEX\n  alex chen: U0OTHER\n")
    assert parse_file_config("people:\n").people == {}
    assert parse_file_config("people:\n  alex@example.com: <@U0ALEX>\n").people == {"alex@example.com": "U0ALEX"}


def test_the_email_scope_is_declared_once_for_approvals_and_mentions() -> None:
    # Approvals match a person's Slack e-mail with the approvers: the scope is always declared,
    # and mentions (which need it too) do not declare it twice.
    for mention_author in (False, True):
        scopes = manifest(mention_author=mention_author)["oauth_config"]["scopes"]["bot"]
        assert scopes.count("users:read.email") == 1
