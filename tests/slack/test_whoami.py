"""``/codestream whoami`` through signed HTTP: what the policy lets the caller do in this
channel (and only elsewhere), so people and operators can debug access rules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, Harness, harness_with_config, running_harness

OTHER = "C0OTHER"
# whoami only reads: the tests of this module share two running bots (one with a policy, one
# without), started once, on the module's event loop.
# A module's tests go to one xdist worker together, so each shared bot starts once.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("whoami")]


@asynccontextmanager
async def policy_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    config = (
        "access:\n"
        "  rules:\n"
        "    - users: [U0ALICE]\n"
        f"      channels: [{ALERTS}]\n"
        "    - usergroups: [S0RELEASE]\n"
        "      actions: [rerun]\n"
        "      projects: [Payments]\n"
        "      pipelines: ['deploy-*']\n"
        "    - users: [U0BOB]\n"
        "      actions: [show]\n"
        "      kinds: [gerrit]\n"
    )
    async with harness_with_config(tmp_path, config) as h:
        h.slack.add_usergroup("S0RELEASE", "release-managers", ["U0CAROL"])
        yield h


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def policy(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with policy_harness(tmp_path_factory.mktemp("policy")) as h:
        yield h


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_policy(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path_factory.mktemp("no-policy")) as h:
        yield h


async def whoami(h: Harness, user: str, channel: str) -> str:
    seen = len(h.slack.responses)
    await h.send.slash_command("whoami", user=user, channel=channel)
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    response = h.slack.responses[-1]
    assert response.body.get("response_type") == "ephemeral"  # only the caller sees it
    return json.dumps(response.body, ensure_ascii=False)


async def test_whoami_lists_what_the_caller_may_do_here_and_only_elsewhere(policy: Harness) -> None:
    h = policy
    alice_here = await whoami(h, "U0ALICE", ALERTS)
    assert "*rerun*, *resume*, *show*" in alice_here and "any event" in alice_here and "(rule 0)" in alice_here
    alice_elsewhere = await whoami(h, "U0ALICE", OTHER)
    assert "may do nothing in" in alice_elsewhere
    assert "Only elsewhere" in alice_elsewhere
    assert f"in <#{ALERTS}>: *rerun*, *resume*, *show* — any event _(rule 0)_" in alice_elsewhere
    # Carol through her user group: only rerun, only Payments' deploy pipelines, anywhere.
    carol = await whoami(h, "U0CAROL", OTHER)
    assert "*rerun* — any event in projects `Payments` pipelines `deploy-*` _(rule 1)_" in carol
    assert "*resume*" not in carol
    bob = await whoami(h, "U0BOB", OTHER)
    assert "*show* — gerrit events _(rule 2)_" in bob and "*rerun*" not in bob
    dave = await whoami(h, "U0DAVE", OTHER)
    assert "may do nothing in" in dave and "Only elsewhere" not in dave
    assert h.posts() == 0 and h.sim.count("GET", "/codestream/api/") == 0  # Code Stream is not asked


async def test_whoami_without_a_policy_says_everyone_may_do_everything(no_policy: Harness) -> None:
    answer = await whoami(no_policy, "U0ALICE", ALERTS)
    assert "no access policy is set" in answer and "rerun / resume / show" in answer


async def test_whoami_refuses_a_guest_of_another_workspace(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_ALLOWED_CHANNELS=ALERTS) as h:
        h.slack.add_user("U0GUEST", "guest", team_id="T0PARTNER")
        answer = await whoami(h, "U0GUEST", ALERTS)
        assert "only serves people of its own Slack workspace" in answer and "rule 0" not in answer


async def test_help_lists_whoami_from_the_command_table(no_policy: Harness) -> None:
    reply = await no_policy.send.slash_command("help", user="U0ALICE")
    assert "/codestream whoami" in json.dumps(reply.json())


async def test_whoami_says_when_a_group_could_not_be_checked(tmp_path: Path) -> None:
    # A bot of its own: Slack failing, and no group membership cached by another test.
    async with policy_harness(tmp_path) as h:
        h.slack.fail("usergroups.users.list", error="internal_error", status=500, times=None)
        carol = await whoami(h, "U0CAROL", OTHER)
    assert "as far as the bot can tell right now" in carol and "could not be checked" in carol
    assert "S0RELEASE" in carol or "release-managers" in carol
    assert "*rerun*" not in carol  # fail closed: nothing claimed
