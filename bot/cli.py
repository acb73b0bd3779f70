"""The command line: ``codestream-bot serve | check | simulator | manifest | demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from bot import __version__


def _cmd_check(_args: argparse.Namespace) -> int:
    from bot.check import run_checks

    results = asyncio.run(run_checks())
    for result in results:
        print(result.line())
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)} ok, {len(failed)} failed")
    return 1 if failed else 0


def _cmd_simulator(args: argparse.Namespace) -> int:
    from bot.simulator import serve_forever

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.host, args.port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codestream-bot",
        description="Resume and rerun VMware Code Stream git, Gerrit and Docker-registry events from Slack.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate the configuration; reach Code Stream, Slack and the database")
    check.set_defaults(func=_cmd_check)

    sim = sub.add_parser("simulator", help="run the built-in Code Stream simulator (for trials and demos)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8080)
    sim.set_defaults(func=_cmd_simulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
