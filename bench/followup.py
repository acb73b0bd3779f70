"""Benchmark of the follow-through: ``python -m bench.followup [--trackers 500] [--seconds 60]``.

N executions are RUNNING in the Code Stream simulator, each followed by a tracker made with
``FollowupTracker.track()`` (as the Slack layer does), with a summary message in the Slack
stand-in. Then the real loop (``run()``) runs for a while and we measure:

* GET /executions requests per minute at the simulator, with the default poll budget (2/s),
  and with the largest allowed budget (100/s: what per-tracker backoff alone would do);
* CPU: the bot's thread (``thread_time``) and the whole process (``process_time``, which also
  holds the simulator's, the stand-in's and SQLite's threads), per minute and per poll;
* how often each tracker gets polled (the budget stretches every tracker's interval), and how
  late a status change is noticed: 10% of the executions complete halfway through.

The simulator and the Slack stand-in run on their own thread and event loop, so the bot's
thread is measured alone. The machine is shared and noisy: figures come with a baseline taken
in the same process the same way, a bare ``client.get_execution`` call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bot.codestream.auth import VraRefreshTokenProvider
from bot.codestream.client import CodeStreamClient
from bot.codestream.models import parse_event
from bot.core.followup import FollowupTiming, FollowupTracker
from bot.core.leases import LeaseHolder
from bot.core.requests import ActionRequest, Actor, Outcome
from bot.simulator import SAMPLE_FAILED_GIT_ID, CodeStreamSimulator
from bot.simulator.slack_api import SlackStandIn
from bot.slack.delivery import Delivery
from bot.slack.notifier import SlackNotifier
from bot.store import ActionRecord, Store, open_store

EXECUTION_UI = "https://vra.example.com/codestream/#/executions/{id}"
T = TypeVar("T")
CHANNEL = "C0ALERTS"
TOKEN = "xoxb-bench-token"
EXECUTIONS = "/codestream/api/executions/"


class Services:
    """The simulator and the Slack stand-in on a background thread with its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="services", daemon=True)
        self.sim = CodeStreamSimulator(execution_duration=24 * 3600)
        self.slack = SlackStandIn(bot_token=TOKEN)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the services' thread (the simulator is not thread-safe)."""

        async def wrapped() -> T:
            return fn()

        return self.run(wrapped())

    def gets(self) -> int:
        return self.call(lambda: self.sim.count("GET", EXECUTIONS))

    def __enter__(self) -> Services:
        self.thread.start()
        self.run(self.sim.start())
        self.run(self.slack.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.slack.stop())
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass(frozen=True)
class Cpu:
    process: float
    thread: float


class CpuMeter:
    def __init__(self) -> None:
        self.p0, self.t0, self.w0 = time.process_time(), time.thread_time(), time.monotonic()

    def read(self) -> tuple[Cpu, float]:
        cpu = Cpu(time.process_time() - self.p0, time.thread_time() - self.t0)
        return cpu, time.monotonic() - self.w0


async def baseline(client: CodeStreamClient, execution_id: str, calls: int) -> tuple[Cpu, float]:
    """CPU and wall time of one bare ``get_execution`` (median of 5 runs of ``calls`` calls)."""
    runs: list[tuple[Cpu, float]] = []
    for _ in range(5):
        meter = CpuMeter()
        for _ in range(calls):
            await client.get_execution(execution_id)
        cpu, wall = meter.read()
        runs.append((Cpu(cpu.process / calls, cpu.thread / calls), wall / calls))
    runs.sort(key=lambda r: r[0].thread)
    return runs[len(runs) // 2]


@dataclass
class Phase:
    name: str
    budget: float
    seconds: float
    gets: int
    polls: int
    cpu: Cpu
    track_cpu_ms: float  # bot thread CPU per track() call
    distinct: int  # trackers polled at least once
    updates: int
    noticed: int  # completions noticed (of `completed`)
    completed: int
    notice_latency: list[float]


async def run_phase(
    services: Services,
    client: CodeStreamClient,
    web: AsyncWebClient,
    directory: Path,
    *,
    name: str,
    trackers: int,
    budget: float,
    seconds: float,
) -> Phase:
    sim = services.sim
    store: Store = await open_store(f"sqlite+aiosqlite:///{directory / f'{name}.db'}")
    try:
        tracker = FollowupTracker(
            store,
            client,
            SlackNotifier(Delivery(web), execution_link=lambda eid: eid and EXECUTION_UI.format(id=eid)),
            execution_url=lambda eid: EXECUTION_UI.format(id=eid),
            timing=FollowupTiming(poll_budget=budget),
            lease=LeaseHolder(f"bench-{name}"),
        )
        event = parse_event("git", services.call(lambda: sim.get_event("git", SAMPLE_FAILED_GIT_ID)))
        ids = services.call(lambda: [str(sim.add_execution(pipeline="payments-ci")["id"]) for _ in range(trackers)])
        summaries = services.call(
            lambda: [services.slack.post_bot_message(CHANNEL, "summary").ts for _ in range(trackers)]
        )
        action_id = await store.actions.record(
            ActionRecord(
                kind="git", event_id=SAMPLE_FAILED_GIT_ID, action="rerun", actor_id="U0ALICE", surface="button"
            )
        )
        request = ActionRequest("rerun", "git", SAMPLE_FAILED_GIT_ID, Actor("U0ALICE", "alice"), "button", CHANNEL)
        meter = CpuMeter()
        for execution_id, ts in zip(ids, summaries, strict=True):
            after = event.model_copy(
                update={"execution_link": f"{EXECUTIONS}{execution_id}", "execution_status": "RUNNING"}
            )
            outcome = Outcome(
                request, "started", event=after, execution_url=f"https://vra/{execution_id}", action_id=action_id
            )
            await tracker.track(outcome, channel=CHANNEL, summary_ts=ts, alert=None)
        track_cpu, _ = meter.read()

        services.call(sim.reset_requests)
        meter = CpuMeter()
        task = asyncio.create_task(tracker.run())
        completed = ids[::10]
        await asyncio.sleep(seconds / 2)
        finished_at = time.monotonic()
        for execution_id in completed:
            services.call(lambda eid=execution_id: sim.set_execution_status(eid, "COMPLETED"))  # type: ignore[misc]
        await asyncio.sleep(seconds / 2)
        cpu, wall = meter.read()
        requests = services.call(
            lambda: [r for r in sim.requests if r.method == "GET" and r.path.startswith(EXECUTIONS)]
        )
        await tracker.stop()
        await asyncio.gather(task, return_exceptions=True)
        done = set(completed)
        latencies: list[float] = []
        for eid in done:
            seen = [r.at for r in requests if r.path.endswith(eid) and r.at >= finished_at]
            if seen:
                latencies.append(min(seen) - finished_at)
        return Phase(
            name=name,
            budget=budget,
            seconds=wall,
            gets=len(requests),
            polls=tracker.stats.polls,
            cpu=cpu,
            track_cpu_ms=track_cpu.thread / trackers * 1000,
            distinct=len({r.path for r in requests}),
            updates=tracker.stats.summary_updates,
            noticed=tracker.stats.finished,
            completed=len(completed),
            notice_latency=latencies,
        )
    finally:
        await store.close()


def report(base: tuple[Cpu, float], phases: list[Phase], trackers: int) -> None:
    base_cpu, base_wall = base
    print(f"\nfollow-through benchmark: {trackers} trackers, default timing (5 s -> x1.5 -> 60 s, 8 in flight)\n")
    print(
        f"baseline, one bare client.get_execution(): bot thread {base_cpu.thread * 1000:.2f} ms CPU, "
        f"process {base_cpu.process * 1000:.2f} ms CPU, {base_wall * 1000:.2f} ms wall"
    )
    for p in phases:
        per_min = 60 / p.seconds
        thread_per_poll = p.cpu.thread / max(1, p.polls)
        print(f"\n[{p.name}] budget {p.budget:g} reads/s, {p.seconds:.0f} s")
        print(
            f"  GET /executions: {p.gets} = {p.gets * per_min:.0f}/min "
            f"(budget allows {p.budget * 60:.0f}/min); {p.distinct} of {trackers} trackers polled"
        )
        if p.gets:
            print(f"  each tracker polled every ~{trackers / (p.gets / p.seconds):.0f} s at this rate")
        print(
            f"  CPU: bot thread {p.cpu.thread * per_min:.2f} s/min ({100 * p.cpu.thread / p.seconds:.1f}% of a core), "
            f"process {p.cpu.process * per_min:.2f} s/min ({100 * p.cpu.process / p.seconds:.1f}%)"
        )
        print(
            f"  CPU per poll (bot thread, loop + store + client): {thread_per_poll * 1000:.2f} ms "
            f"= {thread_per_poll / base_cpu.thread:.2f}x a bare get_execution"
        )
        print(f"  track(): {p.track_cpu_ms:.2f} ms bot-thread CPU per call")
        lat = sorted(p.notice_latency)
        shown = f"median {statistics.median(lat):.1f} s, max {lat[-1]:.1f} s" if lat else "none polled yet"
        print(
            f"  completions: {p.noticed} of {p.completed} noticed and rendered ({p.updates} summary updates); "
            f"first poll after completing: {len(lat)} polled, {shown}"
        )


async def main_async(args: argparse.Namespace) -> None:
    with Services() as services, tempfile.TemporaryDirectory() as tmp:
        sim = services.sim
        assert sim.base_url is not None
        http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        client = CodeStreamClient(
            sim.base_url, VraRefreshTokenProvider(http, sim.base_url, SecretStr("sim-refresh-token")), http=http
        )
        web = AsyncWebClient(token=TOKEN, base_url=services.slack.api_url)
        try:
            probe = services.call(lambda: str(sim.add_execution(pipeline="probe")["id"]))
            await client.get_execution(probe)  # log in, warm the connection
            base = await baseline(client, probe, args.baseline_calls)
            phases = [
                await run_phase(
                    services,
                    client,
                    web,
                    Path(tmp),
                    name="default budget",
                    trackers=args.trackers,
                    budget=args.budget,
                    seconds=args.seconds,
                ),
            ]
            if not args.skip_unbudgeted:
                phases.append(
                    await run_phase(
                        services,
                        client,
                        web,
                        Path(tmp),
                        name="budget 100 (backoff only)",
                        trackers=args.trackers,
                        budget=100.0,
                        seconds=args.unbudgeted_seconds,
                    )
                )
        finally:
            await client.aclose()
            session = getattr(web, "session", None)
            if session is not None:
                await session.close()
    report(base, phases, args.trackers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trackers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the default-budget run")
    parser.add_argument("--budget", type=float, default=2.0, help="BOT_FOLLOW_POLL_BUDGET (default 2)")
    parser.add_argument("--unbudgeted-seconds", type=float, default=30.0)
    parser.add_argument("--skip-unbudgeted", action="store_true")
    parser.add_argument("--baseline-calls", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
