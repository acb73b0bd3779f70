"""The Slack stand-in's state: messages and ephemerals, on top of users, usergroups and channels.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there. Everything here
is synchronous and free of HTTP, so the Web API methods, `response_url` handling and tests
share one model of the workspace.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from bot.simulator.slack_blocks import MAX_MESSAGE_TEXT, validate_blocks
from bot.simulator.slack_directory import SlackDirectory
from bot.simulator.slack_models import JSON, Message, ResponsePost, SlackError, ts_key

# Fake credentials of the stand-in's default workspace (not secrets).
DEFAULT_BOT_TOKEN = "xoxb-test-token"  # noqa: S105


class SlackWorkspace(SlackDirectory):
    """One Slack team as the stand-in models it: its directory (`SlackDirectory`), messages
    and ephemerals."""

    def __init__(
        self,
        bot_token: str = DEFAULT_BOT_TOKEN,
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        *,
        app_id: str = "A0CODESTREAM",
        team_domain: str = "codestream-test",
        seed: bool = True,
    ) -> None:
        super().__init__(team_id)
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_domain = team_domain
        self.ephemerals: list[Message] = []
        self.responses: list[ResponsePost] = []
        self.views: list[JSON] = []  # modals opened with views.open: {"trigger_id", "view", "id"}
        # Workflow steps (custom functions) started by the sender: execution id -> {"token",
        # "callback_id", "state" ("running", "completed", "failed"), "outputs", "error"}.
        self.function_executions: dict[str, JSON] = {}
        self.response_errors: list[tuple[str, str, list[str]]] = []  # (url, error, details)
        self.home_views: dict[str, JSON] = {}  # each user's published Home tab (views.publish)
        self.home_publishes: dict[str, int] = {}  # views.publish calls per user
        self._messages: dict[str, list[Message]] = {}
        self._index: dict[tuple[str, str], Message] = {}
        self._last_us = 0
        self.add_user(bot_user_id, "codestream-bot", real_name="Code Stream Bot", is_bot=True)
        if seed:
            self.add_user("U0ALICE", "alice", real_name="Alice Example")
            self.add_user("U0BOB", "bob", real_name="Bob Example")
            self.add_user("U0CAROL", "carol", real_name="Carol Example")
            self.add_channel("C0ALERTS", "cs-alerts")
            self.add_channel("C0OTHER", "other")

    # ------------------------------------------------------------------ inspection

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Top-level messages and replies in `channel`, in ts order (no ephemerals)."""
        msgs = self._messages.get(channel, [])
        return sorted((m for m in msgs if include_deleted or not m.deleted), key=lambda m: ts_key(m.ts))

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The thread containing `ts`: parent first, then replies."""
        found = self._index.get((channel, ts))
        root = found.thread_ts if found is not None and found.thread_ts else ts
        return [m for m in self.messages(channel) if m.ts == root or m.thread_ts == root]

    def message(self, channel: str, ts: str) -> Message | None:
        """The message (or ephemeral) `ts` in `channel`, deleted ones included."""
        found = self._index.get((channel, ts))
        if found is not None:
            return found
        return next((m for m in self.ephemerals if m.channel == channel and m.ts == ts), None)

    def ephemerals_for(self, user: str, channel: str | None = None) -> list[Message]:
        return [m for m in self.ephemerals if m.ephemeral_for == user and channel in (None, m.channel)]

    def message_payload(self, msg: Message, *, include_metadata: bool = True) -> JSON:
        """`msg` as Slack's API shows it, with thread counters on a parent."""
        out = msg.to_slack(include_metadata=include_metadata)
        if msg.ephemeral_for is None and not msg.is_reply:
            replies = [m for m in self.messages(msg.channel) if m.thread_ts == msg.ts and m.ts != msg.ts]
            if replies:
                users = sorted({r.user for r in replies if r.user})
                out.update(
                    thread_ts=msg.ts,
                    reply_count=len(replies),
                    reply_users=users,
                    reply_users_count=len(users),
                    latest_reply=replies[-1].ts,
                )
        elif msg.is_reply and msg.thread_ts is not None:
            parent = self._index.get((msg.channel, msg.thread_ts))
            if parent is not None and parent.user:
                out["parent_user_id"] = parent.user
        return out

    def new_response_url(
        self,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        *,
        ttl: float | None = None,
    ) -> str:
        """A fresh ``response_url``: only a stand-in serving HTTP (``SlackStandIn``) can issue one."""
        raise NotImplementedError("response URLs need the stand-in's HTTP server")

    # ------------------------------------------------------------------ writing

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        thread_ts: str | None = None,
        *,
        ts: str | None = None,
        blocks: list[JSON] | None = None,
    ) -> Message:
        """Store a message written by a human, as if typed in the Slack client."""
        channel = self.resolve_channel(channel)
        if ts is not None and (channel, ts) in self._index:
            raise ValueError(f"a message with ts {ts} already exists in {channel}")
        msg = Message(
            channel=channel,
            ts=ts or self.next_ts(),
            text=text,
            blocks=list(blocks or []),
            thread_ts=self.thread_root(channel, thread_ts),
            user=user,
            team=self.team_id,
        )
        self.store(msg)
        return msg

    def post_bot_message(
        self,
        channel: str,
        text: str = "",
        blocks: list[JSON] | None = None,
        *,
        thread_ts: str | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """Store a message as if the bot had posted it (seeding demos and tests); no validation."""
        channel = self.resolve_channel(channel)
        msg = self.bot_message(
            channel, {"text": text, "blocks": blocks}, thread_ts=self.thread_root(channel, thread_ts), metadata=metadata
        )
        self.store(msg)
        return msg

    def post_app_message(
        self,
        channel: str,
        text: str,
        *,
        bot_id: str,
        app_id: str,
        user: str,
        thread_ts: str | None = None,
        metadata: JSON | None = None,
    ) -> Message:
        """Store a message posted by *another* app (its own bot user, bot id and app id)."""
        channel = self.resolve_channel(channel)
        msg = Message(
            channel=channel,
            ts=self.next_ts(),
            text=text,
            user=user,
            bot_id=bot_id,
            app_id=app_id,
            team=self.team_id,
            thread_ts=self.thread_root(channel, thread_ts),
            metadata=metadata,
        )
        self.store(msg)
        return msg

    def next_ts(self) -> str:
        """A unique, increasing message ts like "1732812345.000100"."""
        self._last_us = max(int(time.time() * 1_000_000), self._last_us + 100)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def store(self, msg: Message) -> None:
        sec, frac = ts_key(msg.ts)
        self._last_us = max(self._last_us, sec * 1_000_000 + frac)
        self._messages.setdefault(msg.channel, []).append(msg)
        self._index[(msg.channel, msg.ts)] = msg

    def bot_message(self, channel: str, content: JSON, **fields: Any) -> Message:
        """A new (unstored) message from the bot with `content`'s text and blocks."""
        return Message(
            channel=channel,
            ts=self.next_ts(),
            text=str(content.get("text") or ""),
            blocks=copy.deepcopy(list(content.get("blocks") or [])),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            app_id=self.app_id,
            team=self.team_id,
            **fields,
        )

    def edit(self, msg: Message, content: JSON, metadata: JSON | None = None) -> None:
        """Change `msg` in place, keeping its previous version in `history`.

        Like chat.update, text / blocks that are absent are kept; an empty list clears blocks.
        """
        msg.history.append(msg.snapshot())
        if content.get("text") is not None:
            msg.text = str(content["text"])
        if content.get("blocks") is not None:
            msg.blocks = copy.deepcopy(list(content["blocks"]))
        if metadata is not None:
            msg.metadata = metadata
        msg.edited = True
        msg.edited_ts = self.next_ts()

    def thread_root(self, channel: str, thread_ts: str | None) -> str | None:
        """Slack threads a reply to a reply under the same parent."""
        if not thread_ts:
            return None
        target = self._index.get((channel, thread_ts))
        return target.thread_ts if target is not None and target.thread_ts else thread_ts

    def find(self, channel: str, ts: Any) -> Message:
        msg = self._index.get((channel, str(ts))) if ts else None
        if msg is None or msg.deleted:
            raise SlackError("message_not_found")
        return msg

    @staticmethod
    def check_content(content: JSON, *, require: bool = True) -> None:
        """Raise no_text / msg_too_long / invalid_blocks (with `errors`) like Slack."""
        text, blocks = content.get("text"), content.get("blocks")
        if require and not text and not blocks and not content.get("attachments"):
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
            raise SlackError("msg_too_long")
        if blocks is not None:
            errors = validate_blocks(blocks)
            if errors:
                raise SlackError("invalid_blocks", errors=errors)

    @staticmethod
    def check_metadata(content: JSON) -> JSON | None:
        metadata = content.get("metadata")
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not metadata["event_type"]
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackError("invalid_metadata_format")
        return {"event_type": metadata["event_type"], "event_payload": copy.deepcopy(metadata["event_payload"])}
