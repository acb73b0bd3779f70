"""Shared pieces of the benchmarks: the Code Stream simulator and the Slack stand-in (served from
the benchmark's own process), the server under test as a subprocess (the real ``python -m bot
serve`` or ``python -m bench.bare_app``), the load generator as a subprocess
(``python -m bench.loadgen``, which signs each request as Slack does), Slack payloads, process
readings from ``/proc`` and the statistics every benchmark reports (median and min–max).

Three processes, so each measurement isolates the server: this one (simulator + stand-in, the
bot's downstream), the server under test, and the load generator. Everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from bot.codestream.models import parse_event
from bot.simulator import CodeStreamSimulator
from bot.simulator.slack_api import SlackStandIn
from bot.slack.render.buttons import ACTION_RERUN
from bot.slack.render.messages import render_alert

JSON = dict[str, Any]

REPO = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench-token"
CHANNEL = "C0ALERTS"  # the stand-in's seeded channel (payload builders' default)
USERS = ("U0ALICE", "U0BOB", "U0CAROL")
FORM = "application/x-www-form-urlencoded"
UI_URL = "https://vra.example.com/codestream/#/executions/{id}"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- payloads


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def slash_body(text: str, *, user: str, response_url: str, channel: str = CHANNEL) -> bytes:
    """A ``/codestream`` slash command, form-encoded like Slack sends it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": "T0TEST",
        "team_domain": "codestream-test",
        "channel_id": channel,
        "channel_name": channel.lower(),
        "user_id": user,
        "user_name": user.removeprefix("U0").lower(),
        "command": "/codestream",
        "text": text,
        "api_app_id": "A0CODESTREAM",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": _trigger_id(),
    }
    return urlencode(fields).encode()


def button_body(message: JSON, *, user: str, response_url: str, channel: str = CHANNEL) -> bytes:
    """A click on the alert's Rerun button (``block_actions``), with the alert in ``message``."""
    block_id, element = "", JSON()
    for block in message.get("blocks") or []:
        for el in block.get("elements") or []:
            if isinstance(el, dict) and el.get("action_id") == ACTION_RERUN:
                block_id, element = str(block.get("block_id") or ""), el
    if not element:
        raise ValueError("the message has no Rerun button")
    action: JSON = {
        "action_id": ACTION_RERUN,
        "block_id": block_id,
        "text": element.get("text"),
        "value": element.get("value"),
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if "style" in element:
        action["style"] = element["style"]
    name = user.removeprefix("U0").lower()
    payload: JSON = {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": "T0TEST"},
        "api_app_id": "A0CODESTREAM",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False},
        "trigger_id": _trigger_id(),
        "team": {"id": "T0TEST", "domain": "codestream-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel.lower()},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
        "message": message,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


# --------------------------------------------------------------------------- downstream services


@dataclass
class Services:
    """The Code Stream simulator and the Slack stand-in, in this process's event loop.

    Requests are spread over many channels (``PER_CHANNEL`` each): the stand-in renders a
    top-level message by scanning and sorting its whole channel, so one channel holding tens of
    thousands of messages would make the stand-in, not the bot, the bottleneck."""

    PER_CHANNEL: ClassVar[int] = 100

    sim: CodeStreamSimulator = field(default_factory=lambda: CodeStreamSimulator(seed=False, execution_duration=0.5))
    slack: SlackStandIn = field(default_factory=lambda: SlackStandIn(bot_token=BOT_TOKEN))
    events: list[str] = field(default_factory=list)  # generated failed git events, not yet used
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _channels: int = 0
    _channel_uses: int = 0
    _scanned: int = 0  # stand-in calls already looked at by _scan()
    _post_times: list[float] = field(default_factory=list)

    async def start(self) -> Services:
        await self.sim.start()
        await self.slack.start()
        self._tmp = tempfile.TemporaryDirectory(prefix="csbot-bench-")
        return self

    async def stop(self) -> None:
        await self.slack.stop()
        await self.sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def tmp(self) -> Path:
        assert self._tmp is not None, "Services not started"
        return Path(self._tmp.name)

    def channel(self) -> str:
        """The channel for the next request: a new one (the bot a member) every PER_CHANNEL."""
        if self._channel_uses % self.PER_CHANNEL == 0:
            self._channels += 1
            self.slack.add_channel(f"C0B{self._channels:06d}", f"bench-{self._channels}")
        self._channel_uses += 1
        return f"C0B{self._channels:06d}"

    def take_events(self, n: int) -> list[str]:
        """``n`` failed git events never acted on (each rerun is real work: no dedupe hit)."""
        if len(self.events) < n:
            more = max(n - len(self.events), 5_000)
            self.events.extend(self.sim.generate("git", more, failed=more))
        taken, self.events = self.events[:n], self.events[n:]
        return taken

    def post_alert(self, event_id: str, channel: str) -> JSON:
        """Post the failure alert for an event into the stand-in, as the watcher would, and return
        the message as Slack puts it in a ``block_actions`` payload."""
        event = parse_event("git", self.sim.get_event("git", event_id))
        url = UI_URL.format(id=event.execution_id) if event.execution_id else None
        rendered = render_alert(event, execution_url=url, now=datetime.now(UTC))
        msg = self.slack.post_bot_message(channel, rendered.text, rendered.blocks, metadata=rendered.metadata)
        return self.slack.message_payload(msg)

    def response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        return self.slack.new_response_url(channel=channel, user=user, message_ts=message_ts)

    def slash_bodies(self, texts: Sequence[str]) -> list[bytes]:
        bodies = []
        for i, text in enumerate(texts):
            user, channel = USERS[i % len(USERS)], self.channel()
            url = self.response_url(channel, user)
            bodies.append(slash_body(text, user=user, response_url=url, channel=channel))
        return bodies

    def rerun_commands(self, n: int) -> list[bytes]:
        """``/codestream rerun <id>`` on ``n`` distinct failed events."""
        return self.slash_bodies([f"rerun {event_id}" for event_id in self.take_events(n)])

    def rerun_clicks(self, n: int) -> list[bytes]:
        """Rerun clicks on the alerts of ``n`` distinct failed events (alerts posted first)."""
        bodies = []
        for i, event_id in enumerate(self.take_events(n)):
            user, channel = USERS[i % len(USERS)], self.channel()
            message = self.post_alert(event_id, channel)
            url = self.response_url(channel, user, message["ts"])
            bodies.append(button_body(message, user=user, response_url=url, channel=channel))
        return bodies

    def _scan(self) -> None:
        calls = self.slack.calls
        for call in calls[self._scanned :]:
            if call.method == "chat.postMessage" and call.status == 200 and call.response.get("ok"):
                self._post_times.append(call.at)
        self._scanned = len(calls)

    def posted(self) -> int:
        """Messages the bot posted (chat.postMessage): one summary per successful action."""
        self._scan()
        return len(self._post_times)

    def post_times(self) -> list[float]:
        """time.monotonic() of each chat.postMessage the stand-in answered, in answer order."""
        self._scan()
        return list(self._post_times)

    def rerun_posts(self) -> int:
        return self.sim.count("POST", "/codestream/api/git-events/")


async def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:  # noqa: ASYNC109
    """Poll ``check`` until it is true or ``timeout`` seconds passed; True when it became true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# --------------------------------------------------------------------------- server processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _base_env() -> dict[str, str]:
    """A clean environment: no SLACK_APP_TOKEN or BOT_* from the caller leaks into the server.
    MALLOC_ARENA_MAX=2 as in the image (and the Helm chart), for the bot and the bare app alike."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env["PYTHONPATH"] = str(REPO)
    env["MALLOC_ARENA_MAX"] = os.environ.get("MALLOC_ARENA_MAX", "2")
    return env


def bot_env(services: Services, db: Path, **extra: str) -> dict[str, str]:
    assert services.sim.base_url is not None
    env = _base_env()
    env.update(
        {
            "CODESTREAM_URL": services.sim.base_url,
            "CODESTREAM_REFRESH_TOKEN": "sim-refresh-token",
            "CODESTREAM_TIMEOUT": "30",
            "CODESTREAM_UI_URL": UI_URL,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": services.slack.api_url,
            "BOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "BOT_LOG_LEVEL": "WARNING",
            "BOT_LOG_FORMAT": "text",
            "BOT_WATCH": "false",
        }
    )
    env.update(extra)
    return env


def bare_env(services: Services) -> dict[str, str]:
    env = _base_env()
    env.update(
        {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": services.slack.api_url}
    )
    return env


@dataclass
class ServerProcess:
    """A server under test in its own process, answering on ``url``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 30.0) -> ServerProcess:  # noqa: ASYNC109
        argv = [*self.argv, "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = await asyncio.create_subprocess_exec(
            *argv, env=self.env, cwd=self.cwd, stdout=asyncio.subprocess.DEVNULL, stderr=None
        )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"{self.name} did not answer /healthz within {timeout} s")
                await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


def bot_process(services: Services, db_name: str = "bot.db", **extra_env: str) -> ServerProcess:
    """The real CLI: ``python -m bot serve --mode http`` with a fresh SQLite file."""
    db = services.tmp / f"{uuid.uuid4().hex[:8]}-{db_name}"
    argv = [sys.executable, "-m", "bot", "serve", "--mode", "http"]
    return ServerProcess("bot", argv, bot_env(services, db, **extra_env), services.tmp)


def bare_process(services: Services) -> ServerProcess:
    """``python -m bench.bare_app``: a Bolt AsyncApp that only acks, served the same way."""
    return ServerProcess("bare app", [sys.executable, "-m", "bench.bare_app"], bare_env(services), services.tmp)


def rss_mb(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15 of stat)


# --------------------------------------------------------------------------- the load generator


@dataclass(frozen=True)
class LoadResult:
    """What ``bench.loadgen`` measured: the measured phase only (warm-up excluded)."""

    latencies: list[float]  # seconds, from send to the HTTP response of each request
    statuses: dict[str, int]  # HTTP status (or exception class) -> count
    elapsed: float  # wall time of the measured phase
    first_send: float  # time.monotonic() (system-wide clock) of the first measured send
    warmup_first_send: float  # ... of the first warm-up send (= first_send without a warm-up)
    last_done: float
    cpu: float  # the generator's own CPU seconds in the measured phase

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)


async def run_load(
    url: str,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    warmup: Sequence[bytes] = (),
    prime: bool = False,
    timeout: float = 600.0,  # noqa: ASYNC109
) -> LoadResult:
    """Send ``warmup`` then ``bodies`` (form-encoded, signed at send time) from a separate
    ``python -m bench.loadgen`` process, ``concurrency`` requests in flight."""
    spec = {
        "url": url,
        "secret": SIGNING_SECRET,
        "concurrency": concurrency,
        "content_type": FORM,
        "prime": prime,
        "warmup": [b.decode() for b in warmup],
        "bodies": [b.decode() for b in bodies],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="loadgen-", delete=False) as f:
        json.dump(spec, f)
        path = f.name
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.loadgen", path, cwd=REPO, stdout=asyncio.subprocess.PIPE
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen exited with {proc.returncode}")
    finally:
        os.unlink(path)
    data = json.loads(out)
    return LoadResult(
        latencies=[float(x) for x in data["latencies"]],
        statuses={str(k): int(v) for k, v in data["statuses"].items()},
        elapsed=float(data["elapsed"]),
        first_send=float(data["first_send"]),
        warmup_first_send=float(data["warmup_first_send"]),
        last_done=float(data["last_done"]),
        cpu=float(data["cpu"]),
    )


# --------------------------------------------------------------------------- statistics, output


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Spread:
    """Median and range over repeated runs."""

    median: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 1, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit} ({self.lo:.{digits}f}–{self.hi:.{digits}f})"


def ratios(values: Sequence[float], baselines: Sequence[float]) -> Spread:
    """Per-pair ratios (run i of the subject over run i of the baseline), summarised."""
    return Spread.of([v / b for v, b in zip(values, baselines, strict=True)])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pasted as-is into docs/PERFORMANCE.md)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def header(title: str) -> str:
    load = os.getloadavg()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## {title}\n\n{stamp}; {os.cpu_count()} cores, load average before the run "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
    )


@dataclass
class Profiler:
    """py-spy sampling one process's CPU (``--format raw``: collapsed stacks) until stopped."""

    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def attach(cls, pid: int, out: Path, rate: int = 250) -> Profiler:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(out)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # py-spy attaches before the load starts
        return cls(proc, out)

    async def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.proc.wait, 30)
