"""Health, readiness, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx

from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator, Fault
from bot.simulator.slack_api import SlackSender, SlackStandIn, wait_for
from bot.store import open_store
from tests.harness import (
    ALERTS,
    BOT_TOKEN,
    SIGNING_SECRET,
    Harness,
    bot_cli,
    bot_env,
    listening_socket,
    port_of,
    wait_for_async,
)


async def test_health_and_readiness(harness: Harness) -> None:
    async with httpx.AsyncClient(base_url=harness.bot.url or "") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "database": "ok", "codestream": "ok", "alerts": "ok"}


async def test_readiness_shows_undeliverable_alerts_without_failing(harness: Harness) -> None:
    from datetime import timedelta

    from bot.store import UndeliveredAlert

    now = harness.store.now()
    await harness.store.undelivered.hold(
        UndeliveredAlert(
            key="alert:git:x:1",
            kind="git",
            event_id="x",
            channel_id="C0PAYMENTS",
            reason="not_in_channel",
            first_at=now,
            next_try_at=now + timedelta(hours=1),
            give_up_at=now + timedelta(days=1),
        )
    )
    async with httpx.AsyncClient(base_url=harness.bot.url or "") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert "1 for C0PAYMENTS (not_in_channel: invite the bot" in ready.json()["alerts"]


async def test_readiness_names_the_part_that_is_not_ready(harness: Harness) -> None:
    harness.sim.inject(Fault(path="/codestream/api/about", status=503))
    async with httpx.AsyncClient(base_url=harness.bot.url or "") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False and body["database"] == "ok"
    assert body["codestream"].startswith("not ready (Unavailable")
    async with httpx.AsyncClient(base_url=harness.bot.url or "") as http:
        local = await http.get("/readyz?local=1")  # what Kubernetes probes: Slack must still reach us
    assert local.status_code == 200
    assert local.json()["codestream"].startswith("not ready")


async def test_metrics_count_actions_and_code_stream_calls(harness: Harness) -> None:
    await harness.send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}")
    started = 'codestream_bot_actions_total{action="rerun",result="started",surface="slash"}'
    posted = 'codestream_bot_slack_api_calls_total{method="chat.postMessage",outcome="ok"}'
    text = ""

    async def scraped() -> bool:
        nonlocal text
        async with httpx.AsyncClient(base_url=harness.bot.url or "") as http:
            text = (await http.get("/metrics")).text
        # The action is counted when Code Stream answers; the summary is posted after that.
        return started in text and posted in text

    await wait_for_async(scraped, within=15.0)
    assert started in text
    assert 'codestream_bot_codestream_requests_total{operation="rerun git-events",status="200"}' in text
    assert "codestream_bot_codestream_request_seconds_bucket" in text
    assert 'codestream_bot_slack_api_calls_total{method="chat.postMessage",outcome="ok"}' in text
    assert "codestream_bot_token_refreshes_total" in text


async def test_sigterm_lets_an_in_flight_rerun_finish_once(tmp_path: Path) -> None:
    async with CodeStreamSimulator() as sim, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        listen = listening_socket()
        port = port_of(listen)
        env = {
            **bot_env(sim, slack, tmp_path),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BOT_LOG_FORMAT": "json",
            "BOT_SHUTDOWN_GRACE": "20",
        }
        proc = await bot_cli("serve", "--mode", "http", env=env, cwd=tmp_path, listen=listen)
        try:
            async with httpx.AsyncClient() as http:

                async def up() -> bool:
                    try:
                        return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False

                for _ in range(500):
                    if await up():
                        break
                    await asyncio.sleep(0.02)
                else:
                    raise AssertionError("the bot did not start")
            # Code Stream takes 1.5 s to answer the rerun; SIGTERM arrives while it is in flight.
            sim.inject(Fault(method="POST", path="/codestream/api/git-events/", delay=1.5))
            async with SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, slack) as send:
                await send.slash_command(f"rerun {SAMPLE_FAILED_GIT_ID}", user="U0ALICE")
                await wait_for(lambda: sim.count("POST", "/codestream/api/git-events/") == 1)
                proc.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert sim.count("POST", "/codestream/api/git-events/") == 1
        assert [m for m in slack.messages(ALERTS) if m.user == "U0BOT"]  # the summary was posted
        store = await open_store(env["BOT_DATABASE_URL"])
        try:
            [row] = await store.actions.list()
        finally:
            await store.close()
        assert row.status == "started"
        lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
        assert any(line["message"] == "shutting down" for line in lines)
        assert "xoxb-test-token" not in stderr.decode()
