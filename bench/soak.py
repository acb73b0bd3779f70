"""A long run at a steady mix: is anything growing? ``python -m bench.soak --minutes 120``

The real ``serve`` (a subprocess, SQLite by default, ``--database URL`` for PostgreSQL) against
the simulator and the Slack stand-in, fed every few seconds from this process, signed as Slack
signs: Rerun clicks on fresh alerts and ``whoami`` commands, new failures the watcher alerts,
a Code Stream approval every minute that the approvals watcher posts and alice approves (button,
then the form), and the follow-through of every rerun to its end. Every ``--sample`` seconds it reads the bot's RSS,
open file descriptors, asyncio tasks (``/metrics``), database connections (PostgreSQL) and the
store's table sizes, and counts the error lines in its log. At the end: a table of the samples
and, after the warm-up, each series' slope per hour (least squares) — flat is what passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sqlite3
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from bench.common import FORM, SIGNING_SECRET, ServerProcess, Services, bot_env, header, rss_mb, table, wait_until
from bench.loadgen import sign
from bot.simulator.slack_sender import SlackSender
from bot.slack.render.approval import ACTION_APPROVE, MESSAGE_BLOCK, MESSAGE_INPUT

TABLES = ("actions", "claims", "alerts", "followups", "approvals")
ALERT_CHANNEL = "C0ALERTS"
APPROVER_EMAIL = "alice@example.com"  # the stand-in's e-mail of U0ALICE
JSON = dict[str, Any]


@dataclass
class Sample:
    minute: float
    rss_mb: float
    fds: int
    tasks: int
    db_connections: int
    rows: dict[str, int]
    errors: int
    actions: int


@dataclass
class Soak:
    services: Services
    bot: ServerProcess
    log_path: Path
    database: str | None
    samples: list[Sample] = field(default_factory=list)
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    approvals_asked: int = 0
    approved: set[str] = field(default_factory=set)  # approval requests (message ts) clicked
    _pg_rows: dict[str, int] = field(default_factory=dict)

    async def feed(self, http: httpx.AsyncClient, until: float, every: float) -> None:
        """One request every ``every`` seconds: a Rerun click on a fresh alert, then a
        ``show`` command; a new failure for the watcher every tenth."""
        n = 0
        while time.monotonic() < until:
            n += 1
            bodies = self.services.rerun_clicks(1) if n % 2 else self.services.slash_bodies(["whoami"])
            if n % 10 == 0:
                self.services.sim.generate("git", 1, failed=1)
            if n % 30 == 0:
                self.services.sim.user_operations.add(pipelineName=f"soak-deploy-{n}", approvers=[APPROVER_EMAIL])
                self.approvals_asked += 1
            for body in bodies:
                now = str(int(time.time()))
                headers = {
                    "Content-Type": FORM,
                    "X-Slack-Request-Timestamp": now,
                    "X-Slack-Signature": sign(SIGNING_SECRET, now, body),
                }
                response = await http.post(self.bot.events_url, content=body, headers=headers)
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                self.sent += 1
            await asyncio.sleep(every)

    async def approve(self, until: float) -> None:
        """alice approves every approval request the approvals watcher posted: the Approve
        button, then the form it opens, as Slack sends them."""
        slack = self.services.slack
        async with SlackSender(self.bot.events_url, SIGNING_SECRET, slack) as send:
            while time.monotonic() < until:
                for message in slack.messages(ALERT_CHANNEL):
                    if message.user != "U0BOT" or "Approval needed" not in message.text:
                        continue
                    if message.ts in self.approved or not _has_button(message.blocks, ACTION_APPROVE):
                        continue
                    self.approved.add(message.ts)
                    views = len(slack.views)
                    clicked = await send.block_action(
                        ACTION_APPROVE, user="U0ALICE", channel=ALERT_CHANNEL, message_ts=message.ts
                    )
                    self.statuses[clicked.status_code] = self.statuses.get(clicked.status_code, 0) + 1
                    self.sent += 1
                    if not await wait_until(lambda n=views: len(slack.views) > n, timeout=30):  # type: ignore[misc]
                        continue
                    values = {MESSAGE_BLOCK: {MESSAGE_INPUT: {"type": "plain_text_input", "value": "soak"}}}
                    response = await send.view_submission(slack.views[-1]["view"], "U0ALICE", values=values)
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                    self.sent += 1
                await asyncio.sleep(5)

    def approvals(self) -> tuple[int, int, int]:
        """(asked, approved in Code Stream, POSTs to user-operations)."""
        ops = self.services.sim.user_operations.ops.values()
        done = sum(1 for op in ops if op.get("status") == "APPROVED")
        posts = self.services.sim.count("POST", "/codestream/api/user-operations/")
        return self.approvals_asked, done, posts

    async def sample(self, http: httpx.AsyncClient, started: float) -> Sample:
        metrics = (await http.get(f"{self.bot.url}/metrics")).text
        match = re.search(r"^codestream_bot_asyncio_tasks (\d+)", metrics, re.MULTILINE)
        errors = sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if " ERROR " in line)
        return Sample(
            minute=(time.monotonic() - started) / 60,
            rss_mb=rss_mb(self.bot.pid),
            fds=len(os.listdir(f"/proc/{self.bot.pid}/fd")),
            tasks=int(match.group(1)) if match else -1,
            db_connections=await self.connections(),
            rows=self.rows(),  # (read with the connections, on PostgreSQL)
            errors=errors,
            actions=self.services.rerun_posts(),
        )

    async def connections(self) -> int:
        """The bot's connections to its PostgreSQL database (this reading's own left out)."""
        if self.database is None:
            return 0
        import asyncpg

        dsn = self.database.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(dsn)
        try:
            query = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            self._pg_rows = {}
            for name in TABLES:
                with contextlib.suppress(Exception):
                    self._pg_rows[name] = int(await admin.fetchval(f"SELECT count(*) FROM {name}"))  # noqa: S608
            return int(await admin.fetchval(query))
        finally:
            await admin.close()

    def rows(self) -> dict[str, int]:
        if self.database is not None:
            return dict(self._pg_rows)
        path = self.bot.env["BOT_DATABASE_URL"].split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            found = {}
            for name in TABLES:
                with contextlib.suppress(sqlite3.Error):
                    found[name] = int(db.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # noqa: S608
            return found


def _has_button(blocks: list[JSON], action_id: str) -> bool:
    return any(isinstance(e, dict) and e.get("action_id") == action_id for b in blocks for e in b.get("elements") or [])


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, value), per hour."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 0.0 if sxx == 0 else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def report(soak: Soak, warmup: float) -> str:
    rows = [
        [
            f"{s.minute:.0f}",
            f"{s.rss_mb:.1f}",
            str(s.fds),
            str(s.tasks),
            str(s.db_connections),
            " ".join(f"{k}={v}" for k, v in s.rows.items()),
            str(s.errors),
            str(s.actions),
        ]
        for s in soak.samples
    ]
    lines = [table(["min", "RSS MB", "fds", "tasks", "db conns", "rows", "errors", "reruns"], rows)]
    steady = [s for s in soak.samples if s.minute >= warmup]
    series = {
        "RSS MB": [(s.minute, s.rss_mb) for s in steady],
        "fds": [(s.minute, float(s.fds)) for s in steady],
        "tasks": [(s.minute, float(s.tasks)) for s in steady],
        "db connections": [(s.minute, float(s.db_connections)) for s in steady],
    }
    for name in TABLES:
        series[f"{name} rows"] = [(s.minute, float(s.rows.get(name, 0))) for s in steady]
    lines.append(f"\nAfter {warmup:g} min of warm-up, slope per hour:")
    lines.extend(f"  {name}: {slope_per_hour(points):+.2f}" for name, points in series.items())
    lines.append(f"\nrequests sent {soak.sent}, answers {soak.statuses}, error log lines {soak.samples[-1].errors}")
    asked, approved, posts = soak.approvals()
    lines.append(f"approvals asked {asked}, approved in Code Stream {approved}, POSTs to user-operations {posts}")
    return "\n".join(lines)


async def main(minutes: float, sample_seconds: float, every: float, warmup: float, database: str | None) -> int:
    print(header(f"Soak: {minutes:g} min, one request every {every:g} s, a sample every {sample_seconds:g} s"))
    services = await Services().start()
    log_path = services.tmp / "soak-bot.log"
    db = services.tmp / f"{uuid.uuid4().hex[:8]}-soak.db"
    extra = {
        "BOT_WATCH": "true",
        "BOT_WATCH_INTERVAL": "10",
        "BOT_ALERT_CHANNEL": ALERT_CHANNEL,
        "BOT_LOG_LEVEL": "INFO",
        "BOT_LOG_FORMAT": "text",
        "BOT_FOLLOW_POLL_BUDGET": "20",
        "BOT_APPROVALS_INTERVAL": "10",
    }
    if database is not None:
        extra["BOT_DATABASE_URL"] = database
    env = bot_env(services, db, **extra)
    bot = ServerProcess("bot", [sys.executable, "-m", "bot", "serve", "--mode", "http"], env, services.tmp)
    log = log_path.open("ab")
    soak = Soak(services, bot, log_path, database)
    try:
        await start_logging_to(bot, log)
        started = time.monotonic()
        until = started + minutes * 60
        async with httpx.AsyncClient(timeout=30) as http:
            feeder = asyncio.create_task(soak.feed(http, until, every))
            approver = asyncio.create_task(soak.approve(until))
            while time.monotonic() < until:
                soak.samples.append(await soak.sample(http, started))
                s = soak.samples[-1]
                print(f"  {s.minute:5.1f} min  RSS {s.rss_mb:6.1f} MB  fds {s.fds}  tasks {s.tasks}  errors {s.errors}")
                await asyncio.sleep(sample_seconds)
            await feeder
            await approver
            soak.samples.append(await soak.sample(http, started))
        print(report(soak, warmup))
        print(json.dumps({"samples": [s.__dict__ for s in soak.samples]}), file=sys.stderr)
    finally:
        await bot.stop()
        log.close()
        await services.stop()
    return 0


async def start_logging_to(bot: ServerProcess, log: IO[bytes]) -> None:
    """Start ``bot`` with its output in ``log`` (to count the error lines)."""
    argv = [*bot.argv, "--host", "127.0.0.1", "--port", str(bot.port)]
    bot.proc = await asyncio.create_subprocess_exec(*argv, env=bot.env, cwd=bot.cwd, stdout=log, stderr=log)
    async with httpx.AsyncClient(timeout=2.0) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{bot.url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the bot did not start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between requests")
    parser.add_argument("--warmup", type=float, default=10.0, help="minutes left out of the slopes")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: a SQLite file)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.minutes, args.sample, args.every, args.warmup, args.database)))
