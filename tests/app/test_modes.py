"""Socket Mode wiring, the manifest, and the process entry points."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.app.serve import RunningBot, Timings, default_mode
from bot.app.settings import load_settings
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator
from bot.simulator.slack_api import SlackStandIn, wait_for
from bot.slack.listeners.commands import COMMAND
from bot.slack.listeners.events import MANIFEST_BOT_EVENTS, REGISTERED_EVENTS
from bot.slack.listeners.home import MANIFEST_HOME_EVENTS
from bot.slack.manifest import BOT_SCOPES, FUNCTION_EVENTS, FUNCTIONS, manifest, manifest_yaml
from tests.harness import ALERTS, BOT_TOKEN, FAST, bot_cli, bot_env

ROOT = Path(__file__).resolve().parents[2]


async def test_socket_mode_connects_and_runs_the_same_listeners(tmp_path: Path) -> None:
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = bot_env(sim, slack, tmp_path, SLACK_APP_TOKEN="xapp-1-A0TEST-fake", BOT_HEALTH_PORT="0")
        settings = load_settings(env)
        assert default_mode(settings) == "socket"
        async with RunningBot(settings, mode="socket", timings=Timings(retry=FAST)) as bot:
            await wait_for(lambda: slack.socket_connections >= 1)
            envelope = await slack.socket_deliver(
                "slash_commands",
                {
                    "command": COMMAND,
                    "text": f"rerun {SAMPLE_FAILED_GIT_ID}",
                    "user_id": "U0ALICE",
                    "user_name": "alice",
                    "channel_id": ALERTS,
                    "team_id": "T0TEST",
                    "response_url": slack.new_response_url(channel=ALERTS, user="U0ALICE"),
                    "trigger_id": "1.2.3",
                },
            )
            await wait_for(lambda: envelope in slack.socket_acks)
            await wait_for(lambda: [m for m in slack.messages(ALERTS) if m.user == "U0BOT"])
            assert sim.count("POST", f"/codestream/api/git-events/{SAMPLE_FAILED_GIT_ID}") == 1
            assert bot.url is not None  # the health server runs beside the socket


def test_manifest_file_is_what_the_command_generates() -> None:
    assert (ROOT / "manifest.yml").read_text() == manifest_yaml()


def test_manifest_declares_everything_the_code_listens_to() -> None:
    socket = manifest()
    assert [c["command"] for c in socket["features"]["slash_commands"]] == [COMMAND]
    declared = socket["settings"]["event_subscriptions"]["bot_events"]
    assert declared == [*MANIFEST_BOT_EVENTS, *MANIFEST_HOME_EVENTS, *FUNCTION_EVENTS]
    # The custom workflow step: declared, org-ready (Slack requires it for custom steps).
    assert list(socket["functions"]) == list(FUNCTIONS) == ["run_pipeline"]
    step = socket["functions"]["run_pipeline"]
    assert set(step["input_parameters"]["properties"]) == {"pipeline", "project", "inputs", "wait", "user"}
    assert step["input_parameters"]["properties"]["user"]["type"] == "slack#/types/user_context"
    assert set(step["output_parameters"]["properties"]) == {"execution_id", "execution_url", "status"}
    assert socket["settings"]["org_deploy_enabled"] is True and socket["settings"]["function_runtime"] == "remote"
    assert socket["features"]["app_home"]["home_tab_enabled"] is True  # the Home tab and its event
    assert "app_home_opened" in declared
    # Each registered Bolt event is delivered by at least one subscription.
    for event in REGISTERED_EVENTS:
        assert any(d == event or d.startswith(event + ".") for d in declared), event
    assert socket["settings"]["interactivity"]["is_enabled"] is True
    assert socket["settings"]["socket_mode_enabled"] is True
    scopes = set(socket["oauth_config"]["scopes"]["bot"])
    assert scopes == set(BOT_SCOPES)
    assert {"commands", "chat:write", "channels:history", "groups:history", "app_mentions:read"} <= scopes
    assert {"users:read", "usergroups:read"} <= scopes


def test_http_manifest_fills_in_request_urls() -> None:
    http = yaml.safe_load(manifest_yaml("https://bot.example.com/"))
    url = "https://bot.example.com/slack/events"
    assert http["features"]["slash_commands"][0]["url"] == url
    assert http["settings"]["event_subscriptions"]["request_url"] == url
    assert http["settings"]["interactivity"]["request_url"] == url
    assert http["settings"]["socket_mode_enabled"] is False


async def test_a_second_process_refuses_to_watch_the_same_sqlite_file(tmp_path: Path) -> None:
    import asyncio
    import os

    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = bot_env(sim, slack, tmp_path, BOT_ALERT_CHANNEL=ALERTS)
        async with RunningBot(load_settings(env), timings=Timings(retry=FAST)) as first:
            assert first.runtime is not None
            await wait_for_async_lease(first)
            proc = await bot_cli(
                "serve",
                "--mode",
                "http",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                env={**env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                cwd=tmp_path,
            )
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 2
        message = err.decode()
        assert "is running the failure watcher on this SQLite database" in message
        assert "PostgreSQL" in message


async def wait_for_async_lease(bot: RunningBot) -> None:
    import asyncio

    assert bot.runtime is not None
    for _ in range(500):
        if await bot.runtime.store.liveness.lease_holder("watcher"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the first bot never took the watcher lease")


async def test_a_bad_config_file_stops_start_up_with_clear_lines(tmp_path: Path) -> None:
    import asyncio
    import os

    config = tmp_path / "bot.yaml"
    config.write_text(
        "routes:\n  - match: {kind: svn}\n    channel: C0ALERTS\naccess:\n  rules:\n    - users: [alice]\n"
    )
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        env = {**bot_env(sim, slack, tmp_path, BOT_CONFIG=str(config)), "PATH": os.environ.get("PATH", "/usr/bin")}
        proc = await bot_cli("serve", "--mode", "http", "--port", "0", env=env, cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    message = err.decode()
    assert "BOT_CONFIG routes[0].match.kind: must be git, gerrit, docker or approval (got 'svn')" in message
    assert "Traceback" not in message


async def test_simulator_command_serves_the_api(tmp_path: Path) -> None:
    import asyncio
    import os

    import httpx

    # Port 0: the OS chooses, and the simulator says where it listens.
    proc = await bot_cli("simulator", "--port", "0", env={"PATH": os.environ.get("PATH", "/usr/bin")}, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        assert first.startswith("Code Stream simulator listening on http://127.0.0.1:"), first
        async with httpx.AsyncClient(base_url=first.rsplit(" ", 1)[1].strip()) as http:
            login = await http.post("/iaas/api/login", json={"refreshToken": "sim-refresh-token"})
            token = login.json()["token"]
            about = await http.get("/codestream/api/about", headers={"Authorization": f"Bearer {token}"})
            assert about.json()["latestApiVersion"] == "2019-10-17"
    finally:
        proc.terminate()
        await proc.wait()
