"""The watcher's place in each event list: everything before it is done."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from bot.codestream.models import Event

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def update_micros(event: Event) -> int | None:
    """The event's update time in exact microseconds since the epoch."""
    raw = event.update_time_micros
    if raw is not None and raw > 10**14:  # already micros; a float round trip could lose 1 µs
        return raw
    updated = event.updated
    return None if updated is None else (updated - _EPOCH) // timedelta(microseconds=1)


def format_micros(micros: int) -> str:
    """Code Stream's own timestamp format: ``2019-09-16 09:25:38.065065+00``."""
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


@dataclass(frozen=True)
class Cursor:
    """Everything updated before ``micros``, or at ``micros`` with an id in ``ids``, is done.
    The ids settle ties: several events can share one update time."""

    micros: int
    ids: frozenset[str] = frozenset()

    def covers(self, micros: int, event_id: str) -> bool:
        return micros < self.micros or (micros == self.micros and event_id in self.ids)

    def past(self, micros: int, event_id: str) -> Cursor:
        if micros == self.micros:
            return Cursor(micros, self.ids | {event_id})
        return Cursor(micros, frozenset({event_id})) if micros > self.micros else self

    def dump(self) -> str:
        return json.dumps({"micros": self.micros, "ids": sorted(self.ids)}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> Cursor | None:
        try:
            data = json.loads(text)
            micros, ids = data["micros"], data["ids"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(micros, int) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return None
        return cls(micros, frozenset(ids))


def micros_now() -> int:
    return (datetime.now(UTC) - _EPOCH) // timedelta(microseconds=1)
