"""The command line: ``codestream-bot serve | check | demo | audit | simulator | manifest | config``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__

if TYPE_CHECKING:
    from bot.app.settings import Settings


def _cmd_check(_args: argparse.Namespace) -> int:
    from bot.app.check import CONFIG_CHECKS, run_checks

    results = asyncio.run(run_checks())
    for result in results:
        print(result.line())
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)} ok, {len(failed)} failed")
    if any(r.name in CONFIG_CHECKS for r in failed):
        return 2  # the configuration itself is wrong, as for serve
    return 1 if failed else 0


def _cmd_simulator(args: argparse.Namespace) -> int:
    from bot.simulator import serve_forever

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(args.host, args.port, burst=args.burst))
    return 0


def _configuration_problems() -> tuple[Settings | None, list[str]]:
    """The settings, and every problem of the environment and of the BOT_CONFIG file together."""
    from bot.app.settings import load_settings
    from bot.core.access import parse_access_config
    from bot.core.fileconfig import load_file_config
    from bot.errors import ConfigError

    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems += exc.problems
    path = settings.bot_config if settings is not None else os.environ.get("BOT_CONFIG")
    if path and Path(path).is_file():
        try:
            parse_access_config(load_file_config(path).access)
        except ConfigError as exc:
            problems += exc.problems
    return settings, problems


def _cmd_serve(args: argparse.Namespace) -> int:
    from bot.errors import ConfigError

    settings, config_problems = _configuration_problems()
    if settings is None or config_problems:
        print(ConfigError(config_problems), file=sys.stderr)
        return 2
    # The server's imports (Bolt, uvicorn, SQLAlchemy...) only once the configuration is known to
    # be right: a pod crash-looping on a mistake says so in a third of the CPU time.
    from bot.app.logs import configure_logging
    from bot.app.serve import StartupError, default_mode, serve

    mode = args.mode or default_mode(settings)
    problems = settings.codestream_problems() + settings.slack_problems(socket_mode=mode == "socket")
    if problems:
        print("Cannot start:\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    configure_logging(settings.bot_log_level, settings.bot_log_format)  # build_runtime registers the secrets
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(settings, mode=mode, host=args.host, port=args.port, fd=args.fd))
    except (StartupError, ConfigError) as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_manifest(args: argparse.Namespace) -> int:
    from bot.slack.manifest import manifest_yaml

    print(manifest_yaml(args.http, mention_author=args.mention_author), end="")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from bot.app.reference import bot_config_schema_json, settings_markdown

    print(settings_markdown() if args.markdown else bot_config_schema_json(), end="")
    return 0


def _export_limit(text: str) -> int:
    from bot.core.audit import MAX_EXPORT_ROWS

    if not text.isdigit() or not 1 <= int(text) <= MAX_EXPORT_ROWS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_EXPORT_ROWS}")
    return int(text)


def _cmd_audit(args: argparse.Namespace) -> int:
    from bot.app.settings import load_settings
    from bot.core.audit import AuditQuery, export_rows, parse_duration, rows_for_export
    from bot.core.errors import UsageError
    from bot.errors import ConfigError
    from bot.store import open_store

    try:
        settings = load_settings()
        since = parse_duration(args.since)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except UsageError as exc:
        print(exc.user_message, file=sys.stderr)
        return 2

    async def export() -> str:
        store = await open_store(settings.bot_database_url)
        try:
            query = AuditQuery(event_id=args.event, actor_id=args.user, since=since)
            rows = await rows_for_export(store, query, limit=args.limit)
        finally:
            await store.close()
        return export_rows(rows, args.format)

    sys.stdout.write(asyncio.run(export()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bot.cli.demo import run_demo

    try:
        completed = asyncio.run(run_demo(sys.stdout, as_json=args.json))
    except TimeoutError as exc:
        print(f"\nThe demo did not complete: {exc}", file=sys.stderr)
        return 1
    return 0 if completed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codestream-bot",
        description="Resume and rerun VMware Code Stream git, Gerrit and Docker-registry events from Slack.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the whole story offline: failure, alert, Rerun, summary, follow-through")
    demo.add_argument("--json", action="store_true", help="also print each message's Block Kit JSON")
    demo.set_defaults(func=_cmd_demo)

    serve = sub.add_parser("serve", help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP)")
    serve.add_argument("--mode", choices=["socket", "http"], default=None)
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container listens on all
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on this already listening socket (inherited file descriptor) instead of --host/--port",
    )
    serve.set_defaults(func=_cmd_serve)

    man = sub.add_parser("manifest", help="print the Slack app manifest (Socket Mode, or HTTP with --http URL)")
    man.add_argument("--http", metavar="BASE_URL", default=None, help="public base URL of the bot in HTTP mode")
    man.add_argument(
        "--mention-author",
        action="store_true",
        default=os.environ.get("BOT_MENTION_AUTHOR", "").strip().lower() in ("1", "true", "yes", "on"),
        help="kept for older scripts: users:read.email (BOT_MENTION_AUTHOR, approvals) is always declared now",
    )
    man.set_defaults(func=_cmd_manifest)

    audit = sub.add_parser("audit", help="export the audit trail (who resumed or reran what, and how it went)")
    audit.add_argument("--since", default="24h", help="how far back, e.g. 30m, 24h, 7d (default 24h)")
    audit.add_argument("--format", choices=["csv", "json"], default="csv")
    audit.add_argument("--event", default=None, help="only this event id")
    audit.add_argument("--user", default=None, help="only this Slack user id")
    audit.add_argument("--limit", type=_export_limit, default=100_000, help="at most this many rows (default 100000)")
    audit.set_defaults(func=_cmd_audit)

    check = sub.add_parser("check", help="validate the configuration; reach Code Stream, Slack and the database")
    check.set_defaults(func=_cmd_check)

    config = sub.add_parser(
        "config", help="print the configuration reference: the variables' table, or BOT_CONFIG's JSON Schema"
    )
    what = config.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--markdown", action="store_true", help="the environment variables, as a Markdown table (docs/OPERATING.md)"
    )
    what.add_argument(
        "--json-schema",
        action="store_true",
        help="the JSON Schema of the BOT_CONFIG file (docs/bot-config.schema.json)",
    )
    config.set_defaults(func=_cmd_config)

    sim = sub.add_parser("simulator", help="run the built-in Code Stream simulator (for trials and demos)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8080)
    sim.add_argument("--burst", type=int, default=0, metavar="N", help="fail N git events at start (a storm)")
    sim.set_defaults(func=_cmd_simulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
