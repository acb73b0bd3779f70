"""Memory: the bot process's RSS after start-up and as actions accumulate, against a bare app.

``python -m bench.memory [--actions 20000] [--step 2500] [--runs 1] [--concurrency 50]``

A fresh bot (``python -m bot serve --mode http``, its own process and SQLite file) and a fresh
bare Bolt app (``python -m bench.bare_app``) are started. Actions are sent in blocks of
``--step`` from the ``bench.loadgen`` process, ``--concurrency`` in flight: each a rerun of a
distinct failed git event (so each leaves a real audit row, a claim and a follow-up tracker),
half as ``/codestream rerun <id>`` and half as clicks on the Rerun button of the event's alert.
After each block the benchmark waits until the bot has posted every summary (its backlog
drained) and one more second, then reads ``VmRSS`` from ``/proc/<pid>/status`` of both
processes. The bare app gets the same requests and only acks: its RSS is the baseline for "a
Bolt app on this Python, after as many requests".

Reported: RSS after start-up, after 10,000 and after 20,000 actions (and every step between), the
bot/bare ratio at each point, and the growth between 10k and 20k actions, absolute and in % of
the 10k figure (within noise: < 5 %). Targets: ≤ 150 MB after 20,000 actions, no growth between
10k and 20k. Runs default to 1 because one run of 20,000 full actions takes about 5 minutes on
a 2-core machine (the bot's CPU is the limit); ``--runs 3`` repeats the whole sequence with fresh
processes and reports the median and range (about 16 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field

from bench.common import Services, Spread, bare_process, bot_process, header, run_load, table, wait_until

RSS_TARGET_MB = 150.0
GROWTH_NOISE = 0.05  # 5 % of the 10k figure


@dataclass
class Series:
    """RSS readings (MiB) of one bot and one bare app, by number of actions done."""

    bot: dict[int, float] = field(default_factory=dict)
    bare: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0


def mixed_bodies(services: Services, n: int) -> list[bytes]:
    """Half slash-command reruns, half Rerun clicks on alerts, interleaved; distinct events."""
    clicks = services.rerun_clicks(n // 2)
    commands = services.rerun_commands(n - len(clicks))
    mixed: list[bytes] = []
    for i in range(n):
        source = commands if i % 2 == 0 and commands else clicks if clicks else commands
        mixed.append(source.pop())
    return mixed


async def one_run(services: Services, args: argparse.Namespace, rep: int) -> Series:
    series = Series()
    bot = await bot_process(services).start()
    bare = await bare_process(services).start()
    started = time.monotonic()
    try:
        await asyncio.sleep(1.0)
        series.bot[0], series.bare[0] = bot.rss_mb(), bare.rss_mb()
        done = 0
        while done < args.actions:
            n = min(args.step, args.actions - done)
            bodies = mixed_bodies(services, n)
            posted0 = services.posted()
            for server in (bare, bot):
                result = await run_load(server.events_url, bodies, concurrency=args.concurrency)
                if result.ok != n:
                    raise RuntimeError(f"{server.name}: {result.statuses}")
            expected = posted0 + n

            def drained(expected: int = expected) -> bool:
                return services.posted() >= expected

            if not await wait_until(drained, timeout=max(120.0, n / 10), interval=0.2):
                raise RuntimeError(f"the bot posted {services.posted() - posted0} of {n} summaries")
            await asyncio.sleep(1.0)
            done += n
            series.bot[done], series.bare[done] = bot.rss_mb(), bare.rss_mb()
            print(
                f"run {rep + 1}/{args.runs}: {done:6} actions  bot {series.bot[done]:6.1f} MiB  "
                f"bare {series.bare[done]:6.1f} MiB  ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    finally:
        await bot.stop()
        await bare.stop()
    series.seconds = time.monotonic() - started
    return series


def report(all_series: list[Series], actions: int) -> str:
    points = sorted(all_series[0].bot)
    rows = []
    for p in points:
        bot = Spread.of([s.bot[p] for s in all_series])
        bare = Spread.of([s.bare[p] for s in all_series])
        ratio = Spread.of([s.bot[p] / s.bare[p] for s in all_series])
        rows.append([f"{p:,}" if p else "after start-up", bot.fmt(1), bare.fmt(1), ratio.fmt(2) + "×"])
    lines = [table(["actions", "bot RSS MiB", "bare app RSS MiB", "bot / bare"], rows), ""]
    half = actions // 2
    if half in all_series[0].bot:
        growth = [s.bot[actions] - s.bot[half] for s in all_series]
        growth_pct = [(s.bot[actions] - s.bot[half]) / s.bot[half] for s in all_series]
        bare_growth = [s.bare[actions] - s.bare[half] for s in all_series]
        final = statistics.median(s.bot[actions] for s in all_series)
        per_k = statistics.median(g / (actions - half) * 1000 for g in growth)
        lines += [
            f"Bot growth from {half:,} to {actions:,} actions: {Spread.of(growth).fmt(1, ' MiB')} "
            f"= {Spread.of([g * 100 for g in growth_pct]).fmt(1, ' %')} of the {half:,} figure "
            f"(≈ {per_k:.2f} MiB per 1,000 actions); bare app: {Spread.of(bare_growth).fmt(1, ' MiB')}.",
            f"Targets: ≤ {RSS_TARGET_MB:.0f} MiB after {actions:,} actions — {final:.1f} MiB: "
            f"{'met' if final <= RSS_TARGET_MB else 'NOT met'}; no growth from {half:,} to {actions:,} "
            f"(< {GROWTH_NOISE * 100:.0f} %): "
            f"{'met' if statistics.median(growth_pct) < GROWTH_NOISE else 'NOT met'}.",
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    print(header("Memory"), flush=True)
    services = await Services().start()
    all_series: list[Series] = []
    try:
        for rep in range(args.runs):
            all_series.append(await one_run(services, args, rep))
    finally:
        await services.stop()
    total = sum(s.seconds for s in all_series)
    print(f"\n{args.runs} run(s) of {args.actions:,} actions, {args.concurrency} in flight; {total:.0f} s in all.\n")
    print(report(all_series, args.actions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=20_000, help="actions per run")
    parser.add_argument("--step", type=int, default=2_500, help="read RSS after every this many actions")
    parser.add_argument("--runs", type=int, default=1, help="repeat with fresh processes")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
