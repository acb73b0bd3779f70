"""Reading the audit trail: ``/codestream audit`` in Slack and ``codestream-bot audit`` on the
command line share the query parsing and the export formats."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bot.core.errors import UsageError
from bot.core.targets import parse_target
from bot.store import ActionRecord, Store

PAGE_SIZE: Final = 15
DEFAULT_SINCE: Final = timedelta(days=7)
MAX_SINCE: Final = timedelta(days=3650)
MAX_EXPORT_ROWS: Final = 10_000_000
# Cells a spreadsheet would read as a formula (OWASP, CSV injection): prefixed with a quote.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
AUDIT_USAGE: Final = "Usage: `/codestream audit [event id or link | @user] [--since 7d] [--page 2]`"
_DURATION: Final = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_USER: Final = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
EXPORT_FIELDS: Final = (
    "id",
    "created_at",
    "finished_at",
    "actor_id",
    "actor_name",
    "surface",
    "channel_id",
    "kind",
    "event_id",
    "action",
    "status",
    "error_class",
    "error",
    "execution_link",
    "execution_id",
    "duplicate_of",
    "request_id",
)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w``; at most ten years."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"`{text[:20]}` is not a duration; use e.g. 30m, 24h or 7d.")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_SINCE.total_seconds():
        raise UsageError(f"`{text[:20]}` is too far back: at most 3650d (ten years).")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class AuditQuery:
    event_id: str | None = None
    actor_id: str | None = None
    since: timedelta = DEFAULT_SINCE
    page: int = 1

    def args(self) -> str:
        """The words that make this query again (for 'next page' hints)."""
        words = []
        if self.event_id:
            words.append(self.event_id)
        if self.actor_id:
            words.append(f"<@{self.actor_id}>")
        words.append(f"--since {_format_duration(self.since)}")
        return " ".join(words)


def _format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0 and seconds >= _UNITS[unit]:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_audit_args(words: tuple[str, ...] | list[str]) -> AuditQuery:
    event_id: str | None = None
    actor_id: str | None = None
    since, page = DEFAULT_SINCE, 1
    items = list(words)
    while items:
        word = items.pop(0)
        if word.startswith("--since") or word.startswith("--page"):
            name, _, value = word.partition("=")
            if not value:
                if not items:
                    raise UsageError(f"`{name}` needs a value. {AUDIT_USAGE}")
                value = items.pop(0)
            if name == "--since":
                since = parse_duration(value)
            elif name == "--page" and value.isdigit() and 1 <= int(value) <= 1000:
                page = int(value)
            else:
                raise UsageError(f"`{word[:30]}` is not understood. {AUDIT_USAGE}")
        elif (match := _USER.match(word)) is not None:
            actor_id = match.group(1)
        elif word.startswith("@"):
            raise UsageError(
                "Mention the person so Slack turns it into a user (pick them from the @ menu). " + AUDIT_USAGE
            )
        else:
            try:
                _, event_id = parse_target([word], command="audit")
            except UsageError as exc:
                raise UsageError(f"{exc.user_message} {AUDIT_USAGE}") from None
    return AuditQuery(event_id=event_id, actor_id=actor_id, since=since, page=page)


Visible = Callable[[ActionRecord], Awaitable[bool]]
#: With a filter (the access policy's read rules) pages are counted over the visible rows; this
#: many rows are scanned at most for one page.
MAX_SCANNED: Final = 5000
_BATCH: Final = 200


async def fetch(
    store: Store, query: AuditQuery, *, now: datetime | None = None, visible: Visible | None = None
) -> tuple[list[ActionRecord], bool]:
    """One page of rows, newest first, and whether there are more. ``visible``: only rows it
    accepts count (what the asking person may see)."""
    start = (now or datetime.now(UTC)) - query.since
    if visible is None:
        rows = await store.actions.list(
            since=start,
            event_id=query.event_id,
            actor_id=query.actor_id,
            limit=PAGE_SIZE + 1,
            offset=(query.page - 1) * PAGE_SIZE,
        )
        return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    skip, wanted = (query.page - 1) * PAGE_SIZE, PAGE_SIZE + 1
    shown: list[ActionRecord] = []
    offset = 0
    while len(shown) < wanted and offset < MAX_SCANNED:
        batch = await store.actions.list(
            since=start, event_id=query.event_id, actor_id=query.actor_id, limit=_BATCH, offset=offset
        )
        offset += len(batch)
        for row in batch:
            if await visible(row):
                if skip:
                    skip -= 1
                else:
                    shown.append(row)
        if len(batch) < _BATCH:
            break
    return shown[:PAGE_SIZE], len(shown) > PAGE_SIZE


async def rows_for_export(
    store: Store, query: AuditQuery, *, limit: int, now: datetime | None = None
) -> list[ActionRecord]:
    """Every row of the query (not one page), newest first, at most ``limit``."""
    start = (now or datetime.now(UTC)) - query.since
    return await store.actions.list(since=start, event_id=query.event_id, actor_id=query.actor_id, limit=limit)


def export_rows(rows: list[ActionRecord], fmt: str) -> str:
    records = [{name: _cell(getattr(row, name)) for name in EXPORT_FIELDS} for row in rows]
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    # Every cell quoted: a name with a line break or carriage return stays one cell.
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_FIELDS), lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows({name: _csv_safe(value) for name, value in record.items()} for record in records)
    return out.getvalue()


def _csv_safe(value: object) -> object:
    """Display names and error texts come from people: a cell starting like a formula is made
    text with a leading quote, as OWASP recommends, so opening the export cannot run it."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
