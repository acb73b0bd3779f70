"""What ``codestream-bot serve`` does not load: every module imported costs resident memory for the
life of the process (issue #16, docs/PERFORMANCE.md, "Memory"), so the serve path leaves out the
CLI-only code, the simulator and the demo, Socket Mode's client (imported when the bot runs in
Socket Mode) and the PostgreSQL dialect (imported by a store on PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What `codestream-bot serve` imports before it starts the bot (bot/cli/main.py: _cmd_serve).
SERVE_PATH = ["bot.cli.main", "bot.app.logs", "bot.app.serve", "bot.app.settings", "bot.core.access"]

NOT_FOR_SERVE = [
    "bot.simulator",  # the Code Stream simulator and the Slack stand-in: `simulator`, `demo`, tests
    "bot.cli.demo",
    "bot.app.check",  # `check`
    "bot.slack.manifest",  # `manifest`
    "slack_sdk.socket_mode",  # Socket Mode's client: imported only in Socket Mode
    "slack_bolt.adapter.socket_mode",
    "sqlalchemy.dialects.postgresql",  # a store on PostgreSQL imports it; SQLite needs none of it
    "asyncpg",
]


def _modules_after_importing(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(result.stdout))


def test_serve_does_not_import_what_it_does_not_run() -> None:
    loaded = _modules_after_importing(SERVE_PATH)
    assert "bot.app.serve" in loaded and "bot.store" in loaded and "uvicorn" in loaded
    unwanted = sorted(m for m in loaded if any(m == u or m.startswith(u + ".") for u in NOT_FOR_SERVE))
    assert not unwanted, f"serve imports modules it does not use: {unwanted}"


def test_the_lazy_imports_still_resolve() -> None:
    """The modules imported on first use exist under the names the code imports them by."""
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler  # noqa: F401
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from bot.store.schema import metadata

    table = next(iter(metadata.tables.values()))
    assert postgresql_insert(table).on_conflict_do_nothing() is not None
    assert sqlite_insert(table).on_conflict_do_nothing() is not None


def test_reading_the_settings_loads_no_http_or_slack_client() -> None:
    """A configuration mistake is reported before the HTTP stacks are loaded: reading the
    settings (and the access rules they name) imports neither httpx, aiohttp nor slack_sdk, so
    ``serve`` and ``check`` answer a mistake in a fraction of a second."""
    loaded = _modules_after_importing(["bot.app.settings", "bot.core.access", "bot.codestream.models"])
    heavy = sorted(m for m in loaded if m.split(".")[0] in {"httpx", "aiohttp", "slack_sdk", "slack_bolt"})
    assert not heavy, f"reading the settings imports {heavy[:5]}"
