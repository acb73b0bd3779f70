"""BOT_CONFIG routing rules: parsing, the errors an operator sees, and the decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.codestream.models import Event, EventKind, parse_event
from bot.core.fileconfig import FileConfig, load_file_config, normalize_mention, parse_file_config
from bot.core.routing import RouteDecision, Router
from bot.errors import ConfigError
from bot.store import SubscriptionFilters as Filters

CONFIG = """
routes:
  - match: {pipeline: "*-nightly"}
    drop: true
  - match:
      kind: git
      project: Payments
      repo: [payments, "payments-*"]
      branch: "release/*"
    channel: C0PAYMENTS
    mention: "<!subteam^S0PAYOPS|@pay-ops>"
  - match: {kind: [gerrit, docker], project: Platform}
    channel: C0PLATFORM
    mention: U0ALICE
  - match: {project: Payments}
    channel: C0PAYMENTS
"""


def event(kind: EventKind = "git", **fields: Any) -> Event:
    document: dict[str, Any] = {"id": "8365ef3b-8bf3-48aa-bd5d-7113fcff827c", "executionStatus": "FAILED", **fields}
    return parse_event(kind, document)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_file_config(text)
    return caught.value.problems


@pytest.fixture
def router() -> Router:
    return Router(parse_file_config(CONFIG).routes, fallback="C0ALERTS")


# --- decisions -----------------------------------------------------------------------------------


def test_first_matching_rule_wins_with_globs_lists_and_mentions(router: Router) -> None:
    payments = event(project="Payments", repo="payments-api", targetBranch="release/2.1", pipeline="payments-ci")
    assert router.route(payments) == RouteDecision("C0PAYMENTS", "<!subteam^S0PAYOPS|@pay-ops>", 1, dropped=False)
    # Same project, another branch: rule 1 misses, rule 3 (no mention) catches it.
    main = event(project="Payments", repo="payments", targetBranch="main", pipeline="payments-ci")
    assert router.route(main) == RouteDecision("C0PAYMENTS", None, 3, dropped=False)


def test_drop_rule_wins_when_it_comes_first(router: Router) -> None:
    nightly = event(project="Payments", repo="payments", targetBranch="release/1", pipeline="payments-nightly")
    decision = router.route(nightly)
    assert decision == RouteDecision(None, None, 0, dropped=True) and not decision.alerts


def test_kind_lists_and_user_mentions(router: Router) -> None:
    gerrit = event("gerrit", project="Platform", branch="master")
    assert router.route(gerrit) == RouteDecision("C0PLATFORM", "<@U0ALICE>", 2, dropped=False)
    git = event("git", project="Platform")
    assert router.route(git) == RouteDecision("C0ALERTS", None, None, dropped=False)  # the fallback


def test_matching_is_case_sensitive_and_exact_without_wildcards(router: Router) -> None:
    assert router.route(event(project="payments")).rule is None  # "Payments" != "payments"
    assert router.route(event(project="Payments-EU")).rule is None


def test_a_missing_field_matches_only_star() -> None:
    routes = parse_file_config("routes:\n  - match: {branch: '*'}\n    channel: C0ANY\n").routes
    assert Router(routes).route(event("docker", project="X")).channel == "C0ANY"  # no tag at all
    routes = parse_file_config("routes:\n  - match: {branch: 'main'}\n    channel: C0MAIN\n").routes
    assert Router(routes).route(event("docker")).channel is None


def test_no_match_and_no_fallback_means_no_alert() -> None:
    router = Router(parse_file_config("routes:\n  - match: {project: X}\n    channel: C0X\n").routes)
    decision = router.route(event(project="Y"))
    assert decision == RouteDecision(None, None, None, dropped=False) and not decision.alerts


def test_a_rule_without_match_catches_everything() -> None:
    router = Router(parse_file_config("routes:\n  - channel: C0ALL\n").routes, fallback="C0ALERTS")
    assert router.route(event("gerrit")).channel == "C0ALL"


def test_kinds_polled_skip_kinds_that_are_always_dropped() -> None:
    config = (
        "routes:\n  - match: {kind: docker}\n    drop: true\n  - match: {kind: gerrit, project: P}\n    drop: true\n"
    )
    assert Router(parse_file_config(config).routes, "C0ALERTS").kinds() == ("git", "gerrit")
    assert Router(parse_file_config(config).routes).kinds() == ()
    config += "  - match: {kind: gerrit}\n    channel: C0G\n"
    assert Router(parse_file_config(config).routes).kinds() == ("gerrit",)


def test_describe_prints_the_routing_table(router: Router) -> None:
    assert router.describe() == [
        "routes[0]: pipeline=*-nightly -> drop (no alert)",
        "routes[1]: kind=git project=Payments repo=payments|payments-* branch=release/* -> channel C0PAYMENTS, "
        "mention <!subteam^S0PAYOPS|@pay-ops>",
        "routes[2]: kind=gerrit|docker project=Platform -> channel C0PLATFORM, mention <@U0ALICE>",
        "routes[3]: project=Payments -> channel C0PAYMENTS",
        "otherwise: channel C0ALERTS (BOT_ALERT_CHANNEL)",
    ]
    lonely = Router(parse_file_config("routes:\n  - match: {kind: git}\n    channel: C0G\n").routes)
    assert lonely.describe()[-2:] == [
        "otherwise: no alert (BOT_ALERT_CHANNEL is not set)",
        "not polled (no rule can alert on them): gerrit, docker",
    ]


# --- mentions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("U0ALICE", "<@U0ALICE>"),
        ("W0ENTERPRISE", "<@W0ENTERPRISE>"),
        ("<@U0ALICE>", "<@U0ALICE>"),
        ("S0TEAM", "<!subteam^S0TEAM>"),
        ("<!subteam^S0TEAM>", "<!subteam^S0TEAM>"),
        ("<!subteam^S0TEAM|@team>", "<!subteam^S0TEAM|@team>"),
    ],
)
def test_mentions_are_normalized(given: str, expected: str) -> None:
    assert normalize_mention(given) == expected


@pytest.mark.parametrize("broadcast", ["@here", "<!here>", "@channel", "<!channel>", "<!everyone>", "everyone"])
def test_broadcast_mentions_are_refused(broadcast: str) -> None:
    [line] = problems(f"routes:\n  - channel: C0A\n    mention: '{broadcast}'\n")
    assert line.startswith("BOT_CONFIG routes[0].mention: broadcast mentions such as @here")


# --- errors ----------------------------------------------------------------------------------------


def test_unknown_kind_names_the_rule_and_field() -> None:
    text = "routes:\n" + "  - channel: C0A\n" * 2 + "  - match: {kind: svn}\n    channel: C0A\n"
    assert problems(text) == ["BOT_CONFIG routes[2].match.kind: must be git, gerrit, docker or approval (got 'svn')"]


def test_every_problem_gets_its_own_line() -> None:
    text = """
routes:
  - match: {kind: [git, svn], colour: red}
    channel: C0A
  - channel: C0A
    drop: true
  - match: {branch: 1.10}
  - channel: "#alerts"
    mention: nobody
  - {channel: C0A, drop: "maybe"}
teams: []
"""
    assert problems(text) == [
        "BOT_CONFIG routes[0].match.kind: must be git, gerrit, docker or approval (got 'svn')",
        "BOT_CONFIG routes[0].match.colour: unknown key; expected one of: kind, project, pipeline, repo, branch",
        "BOT_CONFIG routes[1]: has both channel and drop: true; use one",
        "BOT_CONFIG routes[2].match.branch: must be a string or a list of strings; quote it: '1.1' (got 1.1)",
        "BOT_CONFIG routes[3].channel: must be a Slack channel id such as C0123ABCD, not a channel name "
        "(got '#alerts'); copy it from the channel's details",
        "BOT_CONFIG routes[3].mention: must be a user id (U...) or a user group (<!subteam^S...>) (got 'nobody')",
        "BOT_CONFIG routes[4].drop: must be true or false (got 'maybe')",
        "BOT_CONFIG teams: unknown key; expected one of: routes, access, people, approver_groups",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("routes:\n  - match: {kind: git}\n", "BOT_CONFIG routes[0]: needs channel: C... (where to alert)"),
        ("routes:\n  - drop: true\n    mention: U0A\n", "BOT_CONFIG routes[0]: has mention with drop: true"),
        ("routes:\n  - channel: C0A\n    colour: red\n", "BOT_CONFIG routes[0].colour: unknown key; expected one "
         "of: match, channel, drop, mention"),
        ("routes: {channel: C0A}\n", "BOT_CONFIG routes: must be a list (got {'channel': 'C0A'})"),
        ("routes:\n  - match: [git]\n    channel: C0A\n", "BOT_CONFIG routes[0].match: must be a mapping"),
        ("routes:\n  - match: {repo: []}\n    channel: C0A\n", "BOT_CONFIG routes[0].match.repo: must not be an empty"),
        ("- channel: C0A\n", "BOT_CONFIG: must be a mapping with the keys routes, access and people (got [{'channel'"),
        ("routes:\n  - channel: C0A\n    channel: C0B\n", "BOT_CONFIG line 3: key 'channel' appears twice"),
        ("routes:\n  - match: {kind: git\n    channel: C0A\n", "BOT_CONFIG line 3, column 12: invalid YAML: "),
        ("routes:\n\t- channel: C0A\n", "BOT_CONFIG line 2, column 1: invalid YAML: found character '\\t'"),
    ],
)  # fmt: skip
def test_clear_errors(text: str, expected: str) -> None:
    [line] = problems(text)
    assert line.startswith(expected), line


def test_an_empty_file_and_access_are_accepted() -> None:
    assert parse_file_config("") == FileConfig()
    assert parse_file_config("# nothing yet\n") == FileConfig()
    config = parse_file_config("access:\n  rules: [anything]\nroutes: []\n")
    assert config.access == {"rules": ["anything"]} and config.routes == ()


def test_load_file_config(tmp_path: Path) -> None:
    assert load_file_config(None) == FileConfig()
    path = tmp_path / "bot.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    assert len(load_file_config(path).routes) == 4
    with pytest.raises(ConfigError) as caught:
        load_file_config(tmp_path / "missing.yaml")
    assert caught.value.problems == [f"BOT_CONFIG: cannot read {tmp_path / 'missing.yaml'} (No such file or directory)"]
    path.write_text("routes:\n  - match: {kind: svn}\n    channel: C0A\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes\[0\]\.match\.kind: must be git, gerrit, docker or approval"):
        load_file_config(path)


# --- subscriptions: the channels' own routes, after the file's -----------------------------------


def test_subscriptions_come_after_the_file_routes_and_before_the_fallback() -> None:
    from bot.core.routing import StoredRoute

    file_routes = parse_file_config(
        'routes:\n  - match: {pipeline: "*-nightly"}\n    drop: true\n'
        "  - match: {project: Platform}\n    channel: C0PLATFORM\n"
    ).routes
    router = Router(file_routes, "C0ALERTS")
    router.use_stored([
        StoredRoute(1, "C0PAYMENTS", Filters(project="Payments", branch="release/*", mention="<!subteam^S0PAY>")),
        StoredRoute(2, "C0PAYALL", Filters(project="Payments")),
        StoredRoute(3, "C0PLATTEAM", Filters(project="Platform")),
        StoredRoute(4, "C0APPROVALS", Filters(kind="approval")),
    ])  # fmt: skip
    release = router.route(event(project="Payments", pipeline="payments-ci", targetBranch="release/2.1"))
    assert (release.channel, release.mention, release.subscription, release.rule) == (
        "C0PAYMENTS",
        "<!subteam^S0PAY>",
        1,
        None,
    )
    assert router.route(event(project="Payments", targetBranch="main")).channel == "C0PAYALL"  # oldest match first
    assert router.route(event(project="Payments", pipeline="payments-nightly")).dropped  # the file's drop wins
    assert router.route(event(project="Platform")).channel == "C0PLATFORM"  # the file's channel rule wins
    assert router.route(event(project="payments")).channel == "C0ALERTS"  # project is exact; then the fallback
    assert all(d.subscription != 4 for d in (router.route(event(k)) for k in ("git", "gerrit", "docker")))
    assert router.shadowing_rule(StoredRoute(5, "C0X", Filters(project="Platform"))) is None  # only Platform is taken
    assert router.shadowing_rule(StoredRoute(5, "C0X", Filters(kind="approval"))) is None
    lines = router.describe()
    assert "subscription #1: project=Payments branch=release/* -> channel C0PAYMENTS, mention <!subteam^S0PAY>" in lines
    assert (
        lines.index(
            "subscription #1: project=Payments branch=release/* -> channel C0PAYMENTS, mention <!subteam^S0PAY>"
        )
        > 1
    )


def test_a_subscription_makes_its_kind_polled_unless_a_file_rule_takes_every_failure_of_it() -> None:
    from bot.core.routing import StoredRoute

    router = Router(parse_file_config("routes:\n  - match: {kind: docker}\n    drop: true\n").routes)
    assert router.kinds() == () and not router.configured and router.open_to_stored()
    router.use_stored([StoredRoute(1, "C0PAY", Filters(kind="gerrit"))])
    assert router.kinds() == ("gerrit",) and router.configured
    router.use_stored([StoredRoute(1, "C0PAY", Filters(kind="docker"))])  # dropped by the file first
    assert router.kinds() == ()
    assert router.shadowing_rule(StoredRoute(1, "C0PAY", Filters(kind="docker"))) == 0
    router.use_stored([StoredRoute(1, "C0PAY")])
    assert router.kinds() == ("git", "gerrit")
    everything = Router(parse_file_config("routes:\n  - channel: C0ALL\n").routes)
    assert not everything.open_to_stored() and everything.shadowing_rule(StoredRoute(1, "C0PAY")) == 0


def test_a_more_specific_subscription_wins_over_an_older_catch_all() -> None:
    """Found by review: #general subscribed to everything first, so #payments' later
    `project:Payments` got nothing; the one naming more is tried first, then the oldest."""
    from bot.core.routing import StoredRoute

    router = Router(fallback="C0FALLBACK")
    router.use_stored(
        [
            StoredRoute(1, "C0GENERAL"),
            StoredRoute(2, "C0PAYMENTS", Filters(project="Payments")),
            StoredRoute(3, "C0PAYMAIN", Filters(project="Payments", branch="main")),
            StoredRoute(4, "C0LATER", Filters(project="Payments")),
        ]
    )
    assert router.route(event(project="Payments", targetBranch="main")).channel == "C0PAYMAIN"
    assert router.route(event(project="Payments", targetBranch="dev")).channel == "C0PAYMENTS"  # not the later equal
    assert router.route(event(project="Inventory")).channel == "C0GENERAL"


def test_a_filter_that_matches_everything_adds_no_specificity() -> None:
    """#payments-team subscribed to project:Payments first; another channel's `pipeline:* repo:*
    branch:*` names as much as it does, so the older one keeps Payments' failures."""
    from bot.core.routing import StoredRoute

    team = StoredRoute(1, "C0TEAM", Filters(project="Payments"))
    grab = StoredRoute(2, "C0GRAB", Filters(project="Payments", pipeline="*", repo="*", branch="**"))
    nonempty = StoredRoute(4, "C0GRAB", Filters(project="Payments", branch="?*"))  # any branch but none
    for stored in ([team, grab], [grab, team], [nonempty, team]):
        router = Router(stored=stored)
        decisions = [router.route(event(project="Payments", pipeline=f"svc-{n}-ci")) for n in range(20)]
        assert {d.channel for d in decisions} == {"C0TEAM"}
    # A filter that narrows still counts: the deploy pipelines go to the channel that named them.
    deploys = Router(stored=[team, StoredRoute(3, "C0DEPLOY", Filters(project="Payments", pipeline="deploy-*"))])
    assert deploys.route(event(project="Payments", pipeline="deploy-api")).channel == "C0DEPLOY"
    assert deploys.route(event(project="Payments", pipeline="build-api")).channel == "C0TEAM"


def test_subscriptions_that_may_share_failures_are_found_and_the_winner_named() -> None:
    from bot.core.routing import StoredRoute, overlap

    team = StoredRoute(1, "C0TEAM", Filters(project="Payments"))
    assert overlap(team, StoredRoute(2, "C0X", Filters(project="Inventory"))) is None  # disjoint projects
    assert overlap(team, StoredRoute(2, "C0X", Filters(kind="gerrit"))) is team  # may share: the team's names more
    assert overlap(team, StoredRoute(2, "C0X", Filters(project="Payments", pipeline="*"))) is team  # equal: the older
    deploy = StoredRoute(3, "C0DEPLOY", Filters(project="Payments", pipeline="deploy-*"))
    assert overlap(team, deploy) is deploy
    assert overlap(deploy, StoredRoute(4, "C0X", Filters(pipeline="build-*"))) is None  # their prefixes differ
