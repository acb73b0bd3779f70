"""Reading follows the policy too: ``show``, ``list``, ``audit`` and every denial show only what
the policy's show rules let the person see; people of other Slack workspaces are refused."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.simulator import SAMPLE_FAILED_GERRIT_ID, SAMPLE_FAILED_GIT_ID
from bot.simulator.slack_api import wait_for
from tests.harness import ALERTS, Harness, harness_with_config, running_harness, wait_for_rows

OTHER = "C0OTHER"
# Facts of the Payments event that someone outside the policy must not learn from a denial.
PAYMENTS_FACTS = ("Payments", "payments-ci", "payments-api", "Fix rounding", "main")


@pytest.fixture
async def alice_only(tmp_path: Path) -> AsyncIterator[Harness]:
    """Only @alice may act, and see, and only in #cs-alerts; bob may see Platform pipelines."""
    config = (
        "access:\n"
        "  rules:\n"
        "    - users: [U0ALICE]\n"
        f"      channels: [{ALERTS}]\n"
        "    - users: [U0BOB]\n"
        "      actions: [show]\n"
        "      projects: [Platform]\n"
    )
    async with harness_with_config(tmp_path, config) as h:
        yield h


def last_answer(h: Harness) -> str:
    return json.dumps(h.slack.responses[-1].body)


async def ask(h: Harness, text: str, user: str, channel: str) -> str:
    seen = len(h.slack.responses)
    await h.send.slash_command(text, user=user, channel=channel)
    await wait_for(lambda: len(h.slack.responses) > seen, timeout=10)
    return last_answer(h)


async def test_show_denied_names_no_event_facts(alice_only: Harness) -> None:
    h = alice_only
    answer = await ask(h, f"show {SAMPLE_FAILED_GIT_ID}", "U0BOB", OTHER)
    assert "does not let you see this event" in answer
    for fact in PAYMENTS_FACTS:
        assert fact not in answer
    # An action denied to someone who may not see the event says nothing of it either.
    answer = await ask(h, f"rerun {SAMPLE_FAILED_GIT_ID}", "U0BOB", OTHER)
    assert "does not let you rerun this event" in answer
    for fact in PAYMENTS_FACTS:
        assert fact not in answer
    assert h.posts() == 0


async def test_a_denial_to_someone_who_may_see_the_event_still_explains(alice_only: Harness) -> None:
    h = alice_only
    answer = await ask(h, f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}", "U0BOB", OTHER)
    assert "Rerun Platform pipelines (platform-verify)" in answer  # bob may see them: he is told why
    answer = await ask(h, f"show gerrit {SAMPLE_FAILED_GERRIT_ID}", "U0BOB", OTHER)
    assert "platform-verify" in answer


async def test_list_shows_only_what_the_person_may_see(alice_only: Harness) -> None:
    h = alice_only
    bobs = await ask(h, "list", "U0BOB", OTHER)
    assert SAMPLE_FAILED_GERRIT_ID in bobs  # Platform
    assert SAMPLE_FAILED_GIT_ID not in bobs and "payments-ci" not in bobs and "Fix rounding" not in bobs
    alices = await ask(h, "list", "U0ALICE", ALERTS)
    assert SAMPLE_FAILED_GIT_ID in alices and SAMPLE_FAILED_GERRIT_ID in alices
    carols = await ask(h, "list", "U0CAROL", ALERTS)
    assert SAMPLE_FAILED_GIT_ID not in carols and SAMPLE_FAILED_GERRIT_ID not in carols


async def test_audit_shows_only_rows_of_events_the_person_may_see(alice_only: Harness) -> None:
    h = alice_only
    await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE", channel=ALERTS)
    await h.send.slash_command(f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}", user="U0ALICE", channel=ALERTS)
    await wait_for(lambda: h.posts() == 2, timeout=10)
    await wait_for_rows(h, 2)
    git, gerrit = f"`{SAMPLE_FAILED_GIT_ID[:8]}`", f"`{SAMPLE_FAILED_GERRIT_ID[:8]}`"  # as the audit shows ids
    bobs = await ask(h, "audit", "U0BOB", OTHER)
    assert gerrit in bobs and git not in bobs and "1 entries" in bobs
    carols = await ask(h, "audit", "U0CAROL", OTHER)
    assert gerrit not in carols and git not in carols
    alices = await ask(h, "audit", "U0ALICE", ALERTS)
    assert gerrit in alices and git in alices


async def test_a_slack_connect_guest_is_refused_even_where_a_rule_names_only_channels(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_ALLOWED_CHANNELS=ALERTS) as h:
        h.slack.add_user("U0GUEST", "guest", team_id="T0PARTNER")
        answer = await ask(h, f"rerun {SAMPLE_FAILED_GIT_ID}", "U0GUEST", ALERTS)
        assert "only serves people of its own Slack workspace" in answer
        for fact in PAYMENTS_FACTS:
            assert fact not in answer
        listed = await ask(h, "list", "U0GUEST", ALERTS)
        assert SAMPLE_FAILED_GIT_ID not in listed
        [row] = await wait_for_rows(h, 1)
        assert (row.status, row.actor_id) == ("denied", "U0GUEST")
        await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")  # the home team is fine
        await wait_for(lambda: h.posts() == 1, timeout=10)


async def test_allowed_teams_let_a_partner_workspace_in(tmp_path: Path) -> None:
    async with running_harness(tmp_path, BOT_ALLOWED_TEAMS="T0PARTNER") as h:
        h.slack.add_user("U0GUEST", "guest", team_id="T0PARTNER")
        await h.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0GUEST")
        await wait_for(lambda: h.posts() == 1, timeout=10)
        answer = await ask(h, f"rerun gerrit {SAMPLE_FAILED_GERRIT_ID}", "U0ALICE", ALERTS)
        assert "only serves people of its own Slack workspace" in answer  # the list replaces the default


async def test_someone_no_rule_allows_here_cannot_tell_whether_an_event_exists(alice_only: Harness) -> None:
    h = alice_only
    h.sim.reset_requests()
    unknown = "00000000-0000-4000-8000-000000000000"
    real = await ask(h, f"rerun {SAMPLE_FAILED_GIT_ID}", "U0CAROL", OTHER)
    made_up = await ask(h, f"rerun {unknown}", "U0CAROL", OTHER)

    def strip(answer: str) -> str:  # the same words but for the id, the time and the request ref
        same_id = answer.replace(SAMPLE_FAILED_GIT_ID, "ID").replace(unknown, "ID")
        # The two answers may be a second apart: Slack's date tokens say when, not what.
        return re.sub(r"\^\d{9,}\^", "^TIME^", same_id).split("ref `")[0]

    assert strip(real) == strip(made_up) and "does not let you rerun this event" in real
    assert h.sim.count("GET", "/codestream/api/git-events/") == 0  # nothing was even read
