"""Records kept by the Slack stand-in, its error type, and a polling helper for tests.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

T = TypeVar("T")

JSON = dict[str, Any]


class SlackError(Exception):
    """Raised inside a method handler; becomes `{"ok": false, "error": ..., **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def truthy(value: Any) -> bool:
    """Slack's reading of a boolean argument: JSON true, or "1"/"true" in a form/query."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key for a message ts ("1732812345.000100")."""
    sec, _, frac = ts.partition(".")
    return int(sec or 0), int((frac or "0").ljust(6, "0")[:6])


@dataclass
class Message:
    """One message as the stand-in stores it (bot posts, human posts and ephemerals)."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[JSON] = field(default_factory=list)
    thread_ts: str | None = None
    user: str | None = None
    bot_id: str | None = None
    metadata: JSON | None = None
    edited: bool = False
    history: list[Message] = field(default_factory=list)
    ephemeral_for: str | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    app_id: str | None = None
    team: str | None = None
    edited_ts: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def snapshot(self) -> Message:
        """A deep copy without history, as kept in `history` when the message changes."""
        return Message(
            channel=self.channel,
            ts=self.ts,
            text=self.text,
            blocks=copy.deepcopy(self.blocks),
            thread_ts=self.thread_ts,
            user=self.user,
            bot_id=self.bot_id,
            metadata=copy.deepcopy(self.metadata),
            edited=self.edited,
            ephemeral_for=self.ephemeral_for,
            reply_broadcast=self.reply_broadcast,
            deleted=self.deleted,
            app_id=self.app_id,
            team=self.team,
            edited_ts=self.edited_ts,
        )

    def to_slack(self, *, include_metadata: bool = True) -> JSON:
        """The message object as Slack's API returns it (without thread counters)."""
        out: JSON = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user is not None:
            out["user"] = self.user
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
            if self.app_id is not None:
                out["app_id"] = self.app_id
        if self.team is not None:
            out["team"] = self.team
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if self.edited and self.edited_ts is not None:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if include_metadata and self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass(frozen=True)
class SlackCall:
    """One Web API call received by the stand-in.

    `args` holds the merged query/form/JSON arguments without the token, with `blocks`,
    `attachments` and `metadata` decoded to Python objects when they came as JSON strings.
    """

    method: str
    args: JSON
    at: float
    http_method: str = "POST"
    token: str | None = None
    status: int = 200
    response: JSON = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


@dataclass(frozen=True)
class ResponsePost:
    """One accepted POST to a `response_url`."""

    url: str
    body: JSON
    at: float
    channel: str | None
    user: str | None
    message_ts: str | None
    action: str  # "ephemeral" | "in_channel" | "replaced" | "deleted"
    message: Message | None = None

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def blocks(self) -> list[JSON]:
        blocks = self.body.get("blocks")
        return list(blocks) if isinstance(blocks, list) else []


async def wait_for(
    predicate: Callable[[], T | bool | None],
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    *,
    interval: float = 0.005,
    message: str | None = None,
) -> T:
    """Poll `predicate` until it returns something truthy, and return that value.

    Raises AssertionError (naming the predicate and its last value) when `timeout` passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return cast(T, last)
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}")
        await asyncio.sleep(interval)
