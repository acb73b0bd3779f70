"""Access control: who may act, where, on what — one check in perform() for every surface.
User-group membership comes from the Slack stand-in over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.codestream.models import GitEvent
from bot.core.access import AllowEveryone, Rule, RulePolicy, build_policy, parse_access_config
from bot.core.errors import AccessDenied
from bot.core.requests import ActionRequest, Actor, Verb
from bot.errors import ConfigError
from bot.simulator import SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import SlackStandIn, wait_for
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.usergroups import SlackGroupDirectory
from tests.harness import ALERTS, BOT_TOKEN, Harness, harness_with_config, running_harness, wait_for_rows

PAYMENTS = GitEvent.model_validate({"id": SAMPLE_FAILED_GIT_ID, "project": "Payments", "pipeline": "payments-ci"})
STOREFRONT = GitEvent.model_validate({"id": SAMPLE_FAILED_GIT_ID, "project": "Storefront", "pipeline": "web-ci"})


def req(user: str, verb: Verb = "rerun", channel: str = "C0ALERTS") -> ActionRequest:
    return ActionRequest(
        verb=verb, kind="git", event_id=SAMPLE_FAILED_GIT_ID, actor=Actor(user), surface="slash", channel_id=channel
    )


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(bot_token=BOT_TOKEN) as standin:
        standin.add_usergroup("S0RELEASE", "release-managers", ["U0ALICE"])
        yield standin


@pytest.fixture
def groups(slack: SlackStandIn) -> SlackGroupDirectory:
    web = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
    return SlackGroupDirectory(web, min_refresh=0.0)


async def denial(policy: RulePolicy, request: ActionRequest, event: GitEvent = PAYMENTS) -> str:
    with pytest.raises(AccessDenied) as caught:
        await policy.check(request, event)
    return caught.value.user_message


LOOK = Rule(actions=["show"])  # anyone may look: denials may then say why, naming the event's project


async def test_users_and_channels(groups: SlackGroupDirectory) -> None:
    policy = RulePolicy([Rule(users=["U0ALICE"], channels=["C0ALERTS"]), LOOK], groups)
    await policy.check(req("U0ALICE"), PAYMENTS)
    assert (
        await denial(policy, req("U0BOB"))
        == "You are not <@U0ALICE>, which may rerun Payments pipelines (payments-ci)."
    )
    assert await denial(policy, req("U0ALICE", channel="C0OTHER")) == (
        "Rerun Payments pipelines (payments-ci) is only allowed in <#C0ALERTS>."
    )


async def test_a_denial_to_someone_who_may_not_see_the_event_names_none_of_it(groups: SlackGroupDirectory) -> None:
    policy = RulePolicy([Rule(users=["U0ALICE"], channels=["C0ALERTS"])], groups)
    assert await denial(policy, req("U0BOB")) == "The access policy does not let you rerun this event here."
    assert await denial(policy, req("U0BOB", "show")) == "The access policy does not let you see this event here."
    assert await denial(policy, req("U0ALICE", channel="C0OTHER")) == (
        "The access policy does not let you rerun this event here."
    )


async def test_usergroup_members_and_refresh_on_miss(slack: SlackStandIn, groups: SlackGroupDirectory) -> None:
    policy = RulePolicy([Rule(usergroups=["S0RELEASE"], actions=["rerun", "resume"]), LOOK], groups)
    await policy.check(req("U0ALICE"), PAYMENTS)
    message = await denial(policy, req("U0BOB"))
    assert message == "You are not in @release-managers, which may rerun Payments pipelines (payments-ci)."
    slack.add_usergroup("S0RELEASE", "release-managers", ["U0ALICE", "U0BOB"])  # bob joins
    await policy.check(req("U0BOB"), PAYMENTS)  # a miss refreshes the cached membership
    assert len(slack.calls_to("usergroups.users.list")) == 3


async def test_group_lookup_failing_denies(slack: SlackStandIn, groups: SlackGroupDirectory) -> None:
    policy = RulePolicy([Rule(usergroups=["S0RELEASE"])], groups)
    slack.fail("usergroups.users.list", error="internal_error", status=500, times=None)
    message = await denial(policy, req("U0ALICE"))
    assert "could not check your membership" in message


async def test_per_action_and_per_project_rules(groups: SlackGroupDirectory) -> None:
    policy = RulePolicy(
        [
            Rule(actions=["show"]),  # anyone may look
            Rule(usergroups=["S0RELEASE"], actions=["rerun"], projects=["Pay*"]),  # release managers rerun Payments
            Rule(actions=["rerun", "resume"], projects=["Storefront"]),  # anyone reruns Storefront
        ],
        groups,
    )
    await policy.check(req("U0BOB", "show"), PAYMENTS)
    await policy.check(req("U0BOB", "rerun"), STOREFRONT)
    await policy.check(req("U0ALICE", "rerun"), PAYMENTS)
    assert "@release-managers" in await denial(policy, req("U0BOB", "rerun"))
    assert await denial(policy, req("U0ALICE", "resume")) == (
        "No access rule allows resume Payments pipelines (payments-ci)."
    )


def test_no_rules_means_everyone_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    policy = build_policy(None, allowed_users=None, allowed_usergroups=None, allowed_channels=None, groups=None)
    assert isinstance(policy, AllowEveryone)
    assert "EVERYONE" in caplog.text


def test_env_shortcuts_make_one_rule() -> None:
    policy = build_policy(
        None, allowed_users="U0ALICE, U0BOB", allowed_usergroups="S0RELEASE", allowed_channels="C0ALERTS", groups=None
    )
    assert isinstance(policy, RulePolicy)
    [rule] = policy.rules
    assert (rule.users, rule.usergroups, rule.channels) == (["U0ALICE", "U0BOB"], ["S0RELEASE"], ["C0ALERTS"])


def test_bad_access_config_names_rule_and_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_access_config({"rules": [{"users": ["alice"]}, {"actions": ["deploy"]}, {"who": "me"}]})
    problems = caught.value.problems
    assert any(p.startswith("BOT_CONFIG access.rules[0].users: must be Slack user ids") for p in problems)
    assert any(p.startswith("BOT_CONFIG access.rules[1].actions[0]:") for p in problems)
    assert any(p.startswith("BOT_CONFIG access.rules[2].who:") for p in problems)


# --- every surface, end to end --------------------------------------------------------------


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n"
        "  rules:\n"
        "    - actions: [show]\n"
        "    - usergroups: [S0RELEASE]\n"
        "      projects: [Payments]\n"
        "      channels: [C0ALERTS]\n"
    )
    async with harness_with_config(tmp_path, config) as h:
        h.slack.add_usergroup("S0RELEASE", "release-managers", ["U0ALICE"])
        yield h


async def test_denied_on_every_surface_allowed_for_members(guarded: Harness) -> None:
    h = guarded
    alert = await h.post_alert("git", SAMPLE_FAILED_GIT_ID)
    value = next(
        e["value"]
        for b in alert.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ACTION_RERUN
    )
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0BOB")
    await h.send.block_action(ACTION_RERUN, value, user="U0BOB", channel=ALERTS, message_ts=alert.ts)
    await h.send.message_event(ALERTS, "U0BOB", "rerun", thread_ts=alert.ts)
    await h.send.app_mention(ALERTS, "U0BOB", f"<@U0BOT> rerun {SAMPLE_FAILED_GIT_ID}")
    rows = await wait_for_rows(h, 4)
    assert sorted(r.surface for r in rows) == ["button", "mention", "slash", "thread"]
    assert {r.status for r in rows} == {"denied"}
    assert h.posts() == 0
    # One ephemeral answer per surface (the slash command's through its response_url); each is
    # sent after its row is written.
    await wait_for(lambda: len(h.slack.ephemerals) >= 4 and len(h.slack.responses) >= 1)
    denials = [json.dumps(m.blocks) for m in h.slack.ephemerals]
    assert len(denials) == 4 and all("@release-managers" in d for d in denials)
    assert len(h.slack.responses) == 1

    await h.send.slash_command(f"show gerrit {SAMPLE_FAILED_GERRIT_ID}", user="U0BOB")  # anyone may look
    await wait_for(lambda: len(h.slack.responses) == 2)
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", channel="C0OTHER")
    await wait_for(lambda: len(h.slack.responses) == 3)
    assert "only allowed in" in json.dumps(h.slack.responses[-1].body)
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
    await wait_for(lambda: h.posts() == 1)


async def test_unconfigured_check_warns(tmp_path: Path) -> None:
    from bot.app.check import run_checks

    async with running_harness(tmp_path) as h:
        env = {
            "CODESTREAM_URL": h.settings.codestream_url or "",
            "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
            "BOT_DATABASE_URL": h.settings.bot_database_url,
        }
        results = await run_checks(env)
    [warning] = [r for r in results if r.name == "access"]
    assert warning.warning and "EVERYONE" in warning.detail
    assert warning.line().startswith("WARN")
