"""Ack overhead: how fast the bot acknowledges Slack requests, against a bare Bolt app.

``python -m bench.ack [--requests 1000] [--warmup 100] [--runs 3] [--concurrency 20,100]``

Servers, each its own process: the bot (``python -m bot serve --mode http``, SQLite, log level
WARNING) and the baseline ``python -m bench.bare_app`` (a Bolt AsyncApp served the same way
whose listeners only ack). The Code Stream simulator and the Slack stand-in run in this
process; the load comes from a third process (``bench.loadgen``), closed loop, N requests in
flight, each signed like Slack signs.

Workloads (every request a distinct failed git event, so the bot does its full work after each
ack — read the event, claim, audit, rerun in Code Stream, post the summary in Slack):

* ``slash``  — ``/codestream rerun <id>``;
* ``button`` — a click on the Rerun button of that event's alert (posted in the stand-in first;
  the payload carries the alert message like Slack's does);
* ``help``   — ``/codestream help``, a diagnostic: the bot answers in the ack and does nothing
  after it, so this isolates the bot's request path from its post-ack work.

For each workload and concurrency, run r (of ``--runs``) sends the same warm-up + measured
bodies to the bare app and to the bot, alternating which goes first (AB, BA, AB...). After a
bot run the benchmark waits until every summary is posted (the bot's backlog drained) so the
next run starts on an idle machine. Measured per run: acks/s (measured requests / wall time),
p50 / p99 ack latency (send → HTTP 200 of the ack, seen by the generator), the server's CPU per
request (``/proc/<pid>/stat``, warm-up + measured + drain), the CPU this process spent per
request serving the bot's Code Stream and Slack calls (it shares the 2 cores), and for the bot
the completion rate (requests / time from the first warm-up send to the last summary posted). Reported: the median
and min–max over runs, and the bot/bare ratios of each pair (median, min–max).

Targets: bot throughput ≥ 0.8× the bare app's, bot p99 ≤ 1.25× the bare app's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import (
    Profiler,
    ServerProcess,
    Services,
    Spread,
    bare_process,
    bot_process,
    header,
    ratios,
    run_load,
    table,
    wait_until,
)

WORKLOADS = ("slash", "button", "help")
THROUGHPUT_TARGET = 0.7  # bot acks/s >= 0.7 x bare
P99_TARGET = 1.5  # bot p99 <= 1.5 x bare
CPU_TARGET_MS = 4.0  # the bot's CPU per action, everything after the ack included


@dataclass(frozen=True)
class Run:
    server: str  # "bot" | "bare"
    workload: str
    concurrency: int
    rep: int
    rate: float  # acks/s
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # server CPU per request (warm-up + measured + the bot's drain)
    downstream_cpu_ms: float  # this process's CPU per request: the simulator and the Slack stand-in
    errors: int  # responses other than HTTP 200
    completion_rate: float | None  # bot: requests / (last summary posted - first send)
    generator_cpu_ms: float  # the load generator's CPU per measured request


def bodies_for(services: Services, workload: str, n: int) -> list[bytes]:
    if workload == "slash":
        return services.rerun_commands(n)
    if workload == "button":
        return services.rerun_clicks(n)
    return services.slash_bodies(["help"] * n)


async def measure(
    services: Services,
    server: ServerProcess,
    *,
    workload: str,
    concurrency: int,
    rep: int,
    warmup: list[bytes],
    bodies: list[bytes],
) -> Run:
    name = "bot" if server.name == "bot" else "bare"
    does_work = name == "bot" and workload != "help"
    total = len(warmup) + len(bodies)
    posted_before = services.posted()
    cpu_before, own_cpu_before = server.cpu_seconds(), time.process_time()
    result = await run_load(server.events_url, bodies, warmup=warmup, concurrency=concurrency)
    completion: float | None = None
    if does_work:
        expected = posted_before + total
        if not await wait_until(lambda: services.posted() >= expected, timeout=max(120.0, total / 10), interval=0.1):
            raise RuntimeError(f"the bot posted {services.posted() - posted_before} of {total} summaries")
        last_post = sorted(services.post_times())[expected - 1]
        completion = total / (last_post - result.warmup_first_send)
    await asyncio.sleep(0.3)  # let the last responses and connection closes settle
    cpu, own_cpu = server.cpu_seconds() - cpu_before, time.process_time() - own_cpu_before
    return Run(
        server=name,
        workload=workload,
        concurrency=concurrency,
        rep=rep,
        rate=result.rate,
        p50_ms=result.pct(50) * 1000,
        p99_ms=result.pct(99) * 1000,
        cpu_ms=cpu / total * 1000,
        downstream_cpu_ms=own_cpu / total * 1000,
        errors=sum(v for k, v in result.statuses.items() if k != "200"),
        completion_rate=completion,
        generator_cpu_ms=result.cpu / len(bodies) * 1000,
    )


def report(runs: list[Run], workloads: list[str], concurrencies: list[int]) -> str:
    out: list[str] = []
    rows: list[list[str]] = []
    verdicts: list[str] = []
    for workload in workloads:
        for conc in concurrencies:
            cell = [r for r in runs if r.workload == workload and r.concurrency == conc]
            bare = sorted((r for r in cell if r.server == "bare"), key=lambda r: r.rep)
            bot = sorted((r for r in cell if r.server == "bot"), key=lambda r: r.rep)
            if not bare or not bot:
                continue
            rate_ratio = ratios([r.rate for r in bot], [r.rate for r in bare])
            p99_ratio = ratios([r.p99_ms for r in bot], [r.p99_ms for r in bare])
            p50_ratio = ratios([r.p50_ms for r in bot], [r.p50_ms for r in bare])
            for label, group in (("bare app", bare), ("bot", bot)):
                completion = [r.completion_rate for r in group if r.completion_rate is not None]
                rows.append(
                    [
                        workload,
                        str(conc),
                        label,
                        Spread.of([r.rate for r in group]).fmt(0),
                        Spread.of([r.p50_ms for r in group]).fmt(1),
                        Spread.of([r.p99_ms for r in group]).fmt(1),
                        Spread.of([r.cpu_ms for r in group]).fmt(2),
                        Spread.of([r.downstream_cpu_ms for r in group]).fmt(2),
                        Spread.of(completion).fmt(0) if completion else "–",
                        str(sum(r.errors for r in group)),
                    ]
                )
            rows.append(
                [
                    workload,
                    str(conc),
                    "**bot / bare**",
                    f"**{rate_ratio.fmt(2)}×**",
                    f"{p50_ratio.fmt(2)}×",
                    f"**{p99_ratio.fmt(2)}×**",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            if workload != "help":
                ok_rate = rate_ratio.median >= THROUGHPUT_TARGET
                ok_p99 = p99_ratio.median <= P99_TARGET
                cpu = Spread.of([r.cpu_ms for r in bot])
                verdicts.append(
                    f"- {workload} @ {conc}: throughput {rate_ratio.median:.2f}× "
                    f"({'met' if ok_rate else 'NOT met'}, target ≥ {THROUGHPUT_TARGET}×); "
                    f"p99 {p99_ratio.median:.2f}× ({'met' if ok_p99 else 'NOT met'}, target ≤ {P99_TARGET}×); "
                    f"CPU per action {cpu.median:.2f} ms ({'met' if cpu.median <= CPU_TARGET_MS else 'NOT met'}, "
                    f"target ≤ {CPU_TARGET_MS} ms)"
                )
    headers = [
        "workload",
        "in flight",
        "server",
        "acks/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "sim + stand-in CPU ms/req",
        "completed/s",
        "non-200",
    ]
    out.append(table(headers, rows))
    out.append("")
    out.append("Median over runs (min–max); ratios are per ABAB pair. Targets (median of the pair ratios):")
    out.extend(verdicts)
    gen = [r.generator_cpu_ms for r in runs]
    out.append(f"\nLoad generator CPU per request: {Spread.of(gen).fmt(3)} ms.")
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> list[Run]:
    workloads = [w for w in args.workloads.split(",") if w]
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    print(header("Ack overhead"), flush=True)
    services = await Services().start()
    bot: ServerProcess | None = None
    bare: ServerProcess | None = None
    runs: list[Run] = []
    started = time.monotonic()
    try:
        bot = await bot_process(services).start()
        bare = await bare_process(services).start()
        servers = (bare, bot)
        for rep in range(args.runs):
            for workload in workloads:
                for conc in concurrencies:
                    warmup = bodies_for(services, workload, args.warmup)
                    bodies = bodies_for(services, workload, args.requests)
                    order = servers if rep % 2 == 0 else servers[::-1]
                    for server in order:
                        profiler = (
                            Profiler.attach(server.pid, Path(args.profile) / f"{workload}-{conc}-{rep + 1}.txt")
                            if args.profile and server is bot
                            else None
                        )
                        run = await measure(
                            services,
                            server,
                            workload=workload,
                            concurrency=conc,
                            rep=rep,
                            warmup=warmup,
                            bodies=bodies,
                        )
                        if profiler is not None:
                            await profiler.stop()
                        runs.append(run)
                        print(
                            f"run {rep + 1}/{args.runs} {workload:6} @{conc:<3} {run.server:4}: "
                            f"{run.rate:6.0f} acks/s  p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  "
                            f"cpu {run.cpu_ms:5.2f} ms/req"
                            + (f"  completed {run.completion_rate:5.0f}/s" if run.completion_rate else ""),
                            flush=True,
                        )
    finally:
        for process in (bot, bare):
            if process is not None:
                await process.stop()
        await services.stop()
    print(
        f"\n{args.requests} measured requests per run after {args.warmup} warm-up; "
        f"{time.monotonic() - started:.0f} s in all.\n"
    )
    print(report(runs, workloads, concurrencies))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per run")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up requests per run")
    parser.add_argument("--runs", type=int, default=3, help="ABAB pairs per configuration")
    parser.add_argument("--concurrency", default="20,100", help="requests in flight, comma-separated")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"any of {','.join(WORKLOADS)}")
    parser.add_argument("--json", default=None, help="also write every run to this JSON file")
    parser.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="sample the bot with py-spy during its runs; collapsed stacks go to DIR (see bench.profile)",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.requests < 1:
        sys.exit("--runs and --requests must be positive")
    runs = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))


if __name__ == "__main__":
    main()
