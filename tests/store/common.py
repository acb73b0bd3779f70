"""What the store's tests share: a controllable clock, its start, and records to write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store import ActionRecord, FollowupRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A controllable clock shared by stores in one test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def make_action(**overrides: Any) -> ActionRecord:
    values: dict[str, Any] = {
        "kind": "git",
        "event_id": "ev-1",
        "action": "rerun",
        "actor_id": "U1",
        "surface": "slash",
        "created_at": T0,
    }
    values.update(overrides)
    return ActionRecord(**values)


def make_followup(**overrides: Any) -> FollowupRecord:
    values: dict[str, Any] = {
        "execution_id": "exec-1",
        "kind": "git",
        "event_id": "ev-1",
        "channel_id": "C1",
        "summary_ts": "1.1",
        "next_poll_at": T0,
        "deadline_at": T0 + timedelta(hours=1),
        "created_at": T0,
    }
    values.update(overrides)
    return FollowupRecord(**values)
