"""An operator's mistakes in the configuration get one clear line each, exit status 2, no
traceback, nothing left open, and never a secret — for ``serve`` and ``check`` alike."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import SlackStandIn
from tests.harness import BOT_TOKEN, bot_cli, bot_env

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

PASSWORD = "Sup3rS3cretPw"

MISTAKES = {
    "user-name-not-id": ({"BOT_ALLOWED_USERS": "alice"}, "BOT_ALLOWED_USERS: must be comma-separated Slack member ids"),
    "group-handle": ({"BOT_ALLOWED_USERGROUPS": "@release"}, "BOT_ALLOWED_USERGROUPS: must be comma-separated"),
    "channel-name-in-list": ({"BOT_ALLOWED_CHANNELS": "#ci"}, "BOT_ALLOWED_CHANNELS: must be comma-separated channel"),
    "team": ({"BOT_ALLOWED_TEAMS": "acme"}, "BOT_ALLOWED_TEAMS: must be comma-separated Slack team ids"),
    "mysql-with-password": (
        {"BOT_DATABASE_URL": f"mysql://bot:{PASSWORD}@db/x"},
        "BOT_DATABASE_URL: must be sqlite+aiosqlite:///path.db or postgresql+asyncpg://",
    ),
    "codestream-url-with-password": (
        {"CODESTREAM_URL": f"ftp://admin:{PASSWORD}@vra"},
        "CODESTREAM_URL: must be an http(s) URL",
    ),
    "https-codestream-url-with-password": (
        {"CODESTREAM_URL": f"https://admin:{PASSWORD}@vra.example.com"},
        "CODESTREAM_URL: must not carry a user or password",
    ),
    "password-with-slash-and-at": (
        {"BOT_DATABASE_URL": f"mysql://bot:a/{PASSWORD}@x@db/x"},
        "BOT_DATABASE_URL: must be sqlite+aiosqlite:///path.db",
    ),
    "bad-config-file": ({}, "BOT_CONFIG access.rules[0].users: must be Slack user ids"),
}


@pytest.mark.parametrize("command", ["serve", "check"])
@pytest.mark.parametrize("name", list(MISTAKES))
async def test_a_mistake_gets_one_clear_line_and_exit_2(tmp_path: Path, command: str, name: str) -> None:
    extra, says = MISTAKES[name]
    if name == "bad-config-file":
        config = tmp_path / "bot.yaml"
        config.write_text("access:\n  rules:\n    - users: [alice]\n")
        extra = {"BOT_CONFIG": str(config)}
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = {**bot_env(sim, slack, tmp_path, **extra), "PATH": os.environ.get("PATH", "/usr/bin")}
        args = ("serve", "--mode", "http", "--port", "0") if command == "serve" else ("check",)
        proc = await bot_cli(*args, env=env, cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = (out + err).decode()
    assert proc.returncode == 2, text
    assert says in text
    for leak in ("Traceback", "Unclosed", "ValidationError", PASSWORD):
        assert leak not in text
    if command == "serve":  # (check goes on to report every other part too)
        assert slack.calls == []  # nothing was opened towards Slack
        assert sim.requests == []  # nor Code Stream


async def test_an_empty_webhook_token_is_no_webhook(tmp_path: Path) -> None:
    from bot.app.check import run_checks
    from tests.harness import running_harness

    async with running_harness(tmp_path, BOT_WEBHOOK_TOKEN="", BOT_ALERT_CHANNEL="C0ALERTS") as h:
        assert h.bot.url is not None
        import httpx

        async with httpx.AsyncClient() as http:
            for token in ("", "x"):
                resp = await http.post(f"{h.bot.url}/hooks/codestream", headers={"X-Codestream-Bot-Token": token})
                assert resp.status_code == 404  # closed, for everyone
        env = {
            "CODESTREAM_URL": h.sim.base_url or "",
            "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
            "BOT_DATABASE_URL": h.settings.bot_database_url,
            "BOT_WEBHOOK_TOKEN": "  ",
            "BOT_ALERT_CHANNEL": "C0ALERTS",
        }
        [watcher] = [r for r in await run_checks(env) if r.name == "alert watcher"]
        assert "no webhook wake" in watcher.detail


async def test_an_alert_channel_name_is_resolved_at_start_up(tmp_path: Path) -> None:
    from bot.app.check import run_checks
    from bot.simulator.slack_api import wait_for
    from tests.harness import running_harness

    async with running_harness(tmp_path, BOT_ALERT_CHANNEL="#cs-alerts", BOT_WATCH_LOOKBACK="86400") as h:
        assert h.runtime.settings.bot_alert_channel == "C0ALERTS"
        await wait_for(lambda: [m for m in h.slack.messages("C0ALERTS") if m.user == "U0BOT"], timeout=20)
        assert h.slack.calls_to("conversations.list")
        env = {
            "CODESTREAM_URL": h.sim.base_url or "",
            "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": h.slack.api_url,
            "BOT_DATABASE_URL": h.settings.bot_database_url,
            "BOT_ALERT_CHANNEL": "#cs-alerts",
        }
        [line] = [r for r in await run_checks(env) if r.name == "alert channel"]
        assert line.ok and line.detail == "BOT_ALERT_CHANNEL #cs-alerts resolved to C0ALERTS"
        [missing] = [r for r in await run_checks({**env, "BOT_ALERT_CHANNEL": "#nope"}) if r.name == "alert channel"]
        assert not missing.ok and "no channel named #nope" in missing.detail


async def test_an_unknown_alert_channel_name_stops_serve_with_what_to_do(tmp_path: Path) -> None:
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = {**bot_env(sim, slack, tmp_path, BOT_ALERT_CHANNEL="#ci-alrets"), "PATH": os.environ.get("PATH", "")}
        proc = await bot_cli("serve", "--mode", "http", "--port", "0", env=env, cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = err.decode()
    assert proc.returncode == 2
    assert "no channel named #ci-alrets that the bot can see" in text and "invite the bot" in text
    assert "Traceback" not in text and "Unclosed" not in text


async def test_problems_of_the_environment_and_of_the_config_file_are_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("access:\n  rules:\n    - users: [bob]\n")
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = {
            **bot_env(sim, slack, tmp_path, BOT_ALLOWED_USERS="alice", BOT_CONFIG=str(config)),
            "PATH": os.environ.get("PATH", ""),
        }
        proc = await bot_cli("serve", "--mode", "http", "--port", "0", env=env, cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = err.decode()
    assert proc.returncode == 2
    assert "BOT_ALLOWED_USERS: must be comma-separated Slack member ids" in text
    assert "BOT_CONFIG access.rules[0].users: must be Slack user ids" in text
