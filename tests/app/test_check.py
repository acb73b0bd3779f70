"""``codestream-bot check`` against the simulator: all ok, and a distinct, actionable failure for
each common misconfiguration."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from bot.app.check import CheckResult, run_checks
from bot.simulator import CodeStreamSimulator, Fault
from tests.harness import bot_cli


def _env(sim: CodeStreamSimulator, tmp_path: Path, **overrides: str) -> dict[str, str]:
    assert sim.base_url is not None
    env = {
        "CODESTREAM_URL": sim.base_url,
        "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
        "CODESTREAM_TIMEOUT": "2",
        "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    }
    env.update(overrides)
    return env


def _failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.ok]


async def test_all_ok_against_the_simulator(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    results = await run_checks(_env(sim, tmp_path))
    assert _failed(results) == []
    names = [r.name for r in results]
    assert names[:7] == [
        "configuration",
        "codestream login (vra)",
        "codestream git events",
        "codestream approvals",
        "git webhooks",
        "slack",
        "database",
    ]
    assert names[7] == "access"  # no policy: a warning
    assert set(names[8:]) == {"alert routing", "alert watcher"}  # the routing table, and whether it polls


async def test_check_lists_the_webhooks_whose_pushes_did_not_start_in_the_last_day(
    sim: CodeStreamSimulator, tmp_path: Path
) -> None:
    broken = sim.webhooks.add("payments-main", project="Payments", expired=True)
    sim.webhooks.push(str(broken["id"]))
    sim.webhooks.push(str(broken["id"]))
    healthy = sim.webhooks.add("shop-main", project="Storefront", repoName="storefront", pipeline="storefront-ci")
    sim.webhooks.push(str(healthy["id"]))
    lines = [r.line() for r in await run_checks(_env(sim, tmp_path)) if r.name == "git webhooks"]
    assert len(lines) == 1 and lines[0].startswith("WARN")
    assert "payments-main (Payments · payments-api · main → payments-ci): 2 push(es)" in lines[0]
    assert "Invalid Oauth Refresh token" in lines[0] and "save a new API token" in lines[0]
    assert broken["refreshToken"] not in lines[0]


async def test_wrong_refresh_token(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_REFRESH_TOKEN="wrong-token-value"))
    [failure] = _failed(results)
    assert failure.name == "codestream login (vra)"
    assert "refresh token was rejected" in failure.detail
    assert failure.fix is not None and "CODESTREAM_REFRESH_TOKEN" in failure.fix
    assert "wrong-token-value" not in failure.line()


async def test_unreachable_host(tmp_path: Path, sim: CodeStreamSimulator) -> None:
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_URL="http://127.0.0.1:9"))
    [failure] = _failed(results)
    assert "cannot connect to 127.0.0.1:9" in failure.detail
    assert failure.fix is not None and "CODESTREAM_URL" in failure.fix


async def test_404_on_the_api_path(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    sim.inject(Fault(path="^/codestream/api/git-events$", status=404, body="Not Found", content_type="text/plain"))
    results = await run_checks(_env(sim, tmp_path))
    [failure] = _failed(results)
    assert failure.name == "codestream git events"
    assert failure.detail == "Code Stream has no git-events list. (HTTP 404)"
    assert failure.fix is not None and "without /codestream" in failure.fix


async def test_wrong_base_url_path_gives_a_404_on_login(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    assert sim.base_url is not None
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_URL=sim.base_url + "/codestream"))
    [failure] = _failed(results)
    assert "No login endpoint" in failure.detail
    assert failure.fix is not None and "base URL" in failure.fix


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://127.0.0.1:{port}", ca_file
    await runner.cleanup()


async def test_tls_failure_and_the_ca_bundle_fix(
    sim: CodeStreamSimulator, tmp_path: Path, tls_server: tuple[str, Path]
) -> None:
    url, ca_file = tls_server
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_URL=url))
    [failure] = _failed(results)
    assert "TLS certificate" in failure.detail
    assert failure.fix is not None and "CODESTREAM_CA_BUNDLE" in failure.fix
    # With the CA bundle TLS succeeds; the stand-in server then has no login endpoint (404).
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_URL=url, CODESTREAM_CA_BUNDLE=str(ca_file)))
    [failure] = _failed(results)
    assert "No login endpoint" in failure.detail


async def test_invalid_configuration_is_reported_per_variable(tmp_path: Path, sim: CodeStreamSimulator) -> None:
    results = await run_checks(_env(sim, tmp_path, CODESTREAM_TIMEOUT="soon", CODESTREAM_AUTH="magic"))
    assert [r.detail.split(":")[0] for r in _failed(results)] == ["CODESTREAM_AUTH", "CODESTREAM_TIMEOUT"]


async def test_missing_codestream_settings(tmp_path: Path) -> None:
    results = await run_checks({"BOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    details = [r.detail for r in _failed(results)]
    assert any(d.startswith("CODESTREAM_URL: not set") for d in details)


async def test_the_cli_prints_one_line_per_check_and_exit_codes(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    async def run(env: dict[str, str]) -> tuple[int, str]:
        proc = await bot_cli(
            "check", env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    code, out = await run(_env(sim, tmp_path))
    assert code == 0, out
    assert "ok      codestream login (vra): token obtained" in out
    assert ", 0 failed" in out
    assert "WARN    access: No access policy is set" in out

    code, out = await run(_env(sim, tmp_path, CODESTREAM_REFRESH_TOKEN="a-wrong-refresh-token"))
    assert code == 1
    assert "FAILED  codestream login (vra): the vRA refresh token was rejected" in out
    assert "a-wrong-refresh-token" not in out


async def test_check_says_whether_authors_are_mentioned(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("people:\n  Alex Chen: U0ALEX\n")
    results = await run_checks(_env(sim, tmp_path, BOT_CONFIG=str(config)))
    [off] = [r for r in results if r.name == "author mentions"]
    assert off.warning and "set BOT_MENTION_AUTHOR=true" in off.detail
    results = await run_checks(_env(sim, tmp_path, BOT_CONFIG=str(config), BOT_MENTION_AUTHOR="true"))
    [on] = [r for r in results if r.name == "author mentions"]
    assert not on.warning and "1 people mapped" in on.detail and "users:read.email" in on.detail


async def test_check_says_when_a_storm_becomes_one_digest(sim: CodeStreamSimulator, tmp_path: Path) -> None:
    results = await run_checks(_env(sim, tmp_path, BOT_ALERT_CHANNEL="C0ALERTS", BOT_DIGEST_THRESHOLD="8"))
    [watcher] = [r for r in results if r.name == "alert watcher"]
    assert "more than 8 failures for a channel within 120s are one digest" in watcher.detail
    results = await run_checks(_env(sim, tmp_path, BOT_ALERT_CHANNEL="C0ALERTS", BOT_DIGEST_THRESHOLD="0"))
    [watcher] = [r for r in results if r.name == "alert watcher"]
    assert "no digests" in watcher.detail


async def test_check_prints_the_channels_subscriptions_after_the_file_routes(
    sim: CodeStreamSimulator, tmp_path: Path
) -> None:
    from bot.store import SubscriptionRecord, open_store

    config = tmp_path / "bot.yaml"
    config.write_text("routes:\n  - match: {project: Platform}\n    channel: C0PLATFORM\n")
    env = _env(sim, tmp_path, BOT_CONFIG=str(config), BOT_ALERT_CHANNEL="C0ALERTS")
    store = await open_store(env["BOT_DATABASE_URL"])
    try:
        await store.subscriptions.add(
            SubscriptionRecord(channel_id="C0PAYMENTS", project="Payments", pipeline="pay-*", created_by="U0ALICE")
        )
    finally:
        await store.close()
    lines = [r.detail for r in await run_checks(env) if r.name == "alert routing"]
    assert lines[:3] == [
        "routes[0]: project=Platform -> channel C0PLATFORM",
        "subscription #1: project=Payments pipeline=pay-* -> channel C0PAYMENTS",
        "otherwise: channel C0ALERTS (BOT_ALERT_CHANNEL)",
    ]


async def test_check_says_whether_the_bots_account_can_decide_the_pending_approvals(
    sim: CodeStreamSimulator, tmp_path: Path
) -> None:
    [none] = [r for r in await run_checks(_env(sim, tmp_path)) if r.name == "codestream approvals"]
    assert "acts as svc-codestream-bot" in none.detail and "no approval is pending" in none.detail
    sim.user_operations.add(approvers=["svc-codestream-bot@example.com", "alice@example.com"])
    sim.user_operations.add(approvers=["alice@example.com"])
    [some] = [r for r in await run_checks(_env(sim, tmp_path)) if r.name == "codestream approvals"]
    assert some.warning and "an approver of 1 of 2 pending approvals" in some.detail
    assert some.fix is not None and "ignores a decision" in some.fix
