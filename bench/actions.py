"""Concurrency of actions: 100 reruns at once while Code Stream takes 500 ms to answer each.

``python -m bench.actions [--runs 3] [--actions 100] [--delay 0.5]``

Each run starts a fresh bot (``python -m bot serve --mode http``, its own process and SQLite
file), warms it with one ``/codestream help`` (Bolt's ``auth.test``; Code Stream is not touched,
so the bot has not logged in yet), opens 100 connections, then sends 100
``/codestream rerun <id>`` slash commands for 100 different failed events at once (100 in
flight, from the ``bench.loadgen`` process). The Code Stream simulator delays its answer to
every rerun POST by ``--delay`` seconds (a ``Fault`` on ``POST /codestream/api/git-events/``).

Measured per run: the time from the first request sent until the 100th summary is posted in
Slack (the stand-in's record of the bot's 100th ``chat.postMessage``); the rerun POSTs Code
Stream received (must be exactly 100) and the logins (must be 1: concurrent requests share one
login); the ack p99 of the burst.

Baseline: the same burst with no delay (0 ms), alternating with the delayed runs (AB, BA, ...).
If the bot ran the actions one by one, the delayed burst would take 100 × 0.5 s = 50 s; run
concurrently it takes the baseline plus about one delay. Target: all 100 summaries within 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from bench.common import Services, Spread, bot_process, header, ratios, run_load, table, wait_until
from bot.simulator import Fault

TARGET_SECONDS = 0.8  # issue #16: the last summary within 0.8 s of the first request


@dataclass(frozen=True)
class Burst:
    delay: float
    rep: int
    seconds: float  # first request sent -> last summary posted
    posts: int  # rerun POSTs Code Stream received
    logins: int
    summaries: int
    ack_p99_ms: float
    errors: int


async def burst(services: Services, *, n: int, delay: float, rep: int) -> Burst:
    bot = await bot_process(services).start()
    fault: Fault | None = None
    try:
        warm = await run_load(bot.events_url, services.slash_bodies(["help"]), concurrency=1)
        assert warm.ok == 1, warm.statuses
        bodies = services.rerun_commands(n)
        if delay > 0:
            fault = services.sim.inject(Fault(method="POST", path="/codestream/api/git-events/", delay=delay))
        posts0, logins0, posted0 = services.rerun_posts(), services.sim.logins, services.posted()
        result = await run_load(bot.events_url, bodies, concurrency=n, prime=True)
        done = await wait_until(lambda: services.posted() >= posted0 + n, timeout=60 + n * delay)
        summaries = services.posted() - posted0
        last = sorted(services.post_times())[posted0 + n - 1] if done else float("nan")
        await asyncio.sleep(0.5)  # a stray extra POST or login would show up by now
        return Burst(
            delay=delay,
            rep=rep,
            seconds=last - result.first_send,
            posts=services.rerun_posts() - posts0,
            logins=services.sim.logins - logins0,
            summaries=summaries,
            ack_p99_ms=result.pct(99) * 1000,
            errors=sum(v for k, v in result.statuses.items() if k != "200"),
        )
    finally:
        if fault is not None:
            services.sim.clear_faults()
        await bot.stop()


def report(bursts: list[Burst], delay: float, n: int) -> str:
    base = sorted((b for b in bursts if b.delay == 0), key=lambda b: b.rep)
    slow = sorted((b for b in bursts if b.delay == delay), key=lambda b: b.rep)
    rows = []
    for label, group in (
        (f"baseline: POST answered at once ({n} reruns)", base),
        (f"POST answered after {delay * 1000:.0f} ms ({n} reruns)", slow),
    ):
        rows.append(
            [
                label,
                Spread.of([b.seconds for b in group]).fmt(2, " s"),
                ", ".join(str(b.summaries) for b in group),
                ", ".join(str(b.posts) for b in group),
                ", ".join(str(b.logins) for b in group),
                Spread.of([b.ack_p99_ms for b in group]).fmt(0, " ms"),
                str(sum(b.errors for b in group)),
            ]
        )
    ratio = ratios([b.seconds for b in slow], [b.seconds for b in base])
    extra = Spread.of([s.seconds - b.seconds for s, b in zip(slow, base, strict=True)])
    headers = [
        "burst",
        "first request → last summary",
        "summaries per run",
        "rerun POSTs per run",
        "logins per run",
        "ack p99",
        "non-200",
    ]
    worst, median = max(b.seconds for b in slow), Spread.of([b.seconds for b in slow]).median
    exact = all(b.posts == n and b.logins == 1 and b.summaries == n for b in slow + base)
    lines = [
        table(headers, rows),
        "",
        f"Delayed / baseline: {ratio.fmt(2)}×; the delay added {extra.fmt(2, ' s')} "
        f"(serialised, it would add {n * delay:.0f} s).",
        f"Target: all {n} summaries within {TARGET_SECONDS:g} s — median {median:.2f} s, "
        f"worst {worst:.2f} s: {'met' if worst <= TARGET_SECONDS else 'NOT met'}; "
        f"exactly {n} POSTs, 1 login and {n} summaries in every run: {'yes' if exact else 'NO'}.",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    print(header("Concurrency of actions"), flush=True)
    services = await Services().start()
    bursts: list[Burst] = []
    started = time.monotonic()
    try:
        for rep in range(args.runs):
            delays = (0.0, args.delay) if rep % 2 == 0 else (args.delay, 0.0)
            for delay in delays:
                b = await burst(services, n=args.actions, delay=delay, rep=rep)
                bursts.append(b)
                print(
                    f"run {rep + 1}/{args.runs} delay {delay * 1000:3.0f} ms: {b.seconds:5.2f} s to the last summary; "
                    f"{b.summaries} summaries, {b.posts} POSTs, {b.logins} login(s), ack p99 {b.ack_p99_ms:.0f} ms",
                    flush=True,
                )
    finally:
        await services.stop()
    print(f"\n{time.monotonic() - started:.0f} s in all.\n")
    print(report(bursts, args.delay, args.actions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="pairs of (baseline, delayed) bursts")
    parser.add_argument("--actions", type=int, default=100, help="reruns per burst, all sent at once")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds Code Stream takes to answer each POST")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
