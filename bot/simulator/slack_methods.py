"""Slack Web API methods of the stand-in, as plain functions of decoded arguments.

Part of the Slack stand-in (`bot.simulator.slack_api`); import from there. Each method
takes the merged arguments (query + form/JSON body, `blocks`/`metadata` already decoded)
and returns the JSON body, or raises `SlackError` for `{"ok": false, "error": ...}`.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable
from typing import Any

from bot.simulator.slack_blocks import validate_blocks
from bot.simulator.slack_models import JSON, Message, SlackError, truthy, ts_key
from bot.simulator.slack_workspace import SlackWorkspace


def required(args: JSON, name: str) -> Any:
    value = args.get(name)
    if value in (None, ""):
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
        )
    return value


def _page(items: list[Message], args: JSON, default_limit: int) -> tuple[list[Message], JSON]:
    try:
        limit = int(args.get("limit") or default_limit)
        offset = int(str(args.get("cursor") or "offset:0").partition(":")[2] or 0)
    except ValueError as e:
        raise SlackError("invalid_cursor") from e
    limit = max(1, min(limit, 1000))
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    cursor = f"offset:{offset + limit}" if more else ""
    return page, {"has_more": more, "response_metadata": {"next_cursor": cursor}}


def _window(items: list[Message], args: JSON) -> list[Message]:
    inclusive = truthy(args.get("inclusive"))
    out = items
    if args.get("oldest"):
        lo = ts_key(str(args["oldest"]))
        out = [m for m in out if ts_key(m.ts) > lo or (inclusive and ts_key(m.ts) == lo)]
    if args.get("latest"):
        hi = ts_key(str(args["latest"]))
        out = [m for m in out if ts_key(m.ts) < hi or (inclusive and ts_key(m.ts) == hi)]
    return out


class SlackWebApi(SlackWorkspace):
    """The workspace plus the Web API methods the bot uses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: dict[str, Callable[[JSON], JSON]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "functions.completeSuccess": self._functions_complete_success,
            "functions.completeError": self._functions_complete_error,
        }

    def _running_function(self, args: JSON) -> JSON:
        execution = self.function_executions.get(str(required(args, "function_execution_id")))
        if execution is None:
            raise SlackError("function_execution_not_found")
        if execution["state"] != "running":
            raise SlackError("execution_not_in_running_state")
        return execution

    def _functions_complete_success(self, args: JSON) -> JSON:
        """A workflow step's success: its outputs (a JSON object, as slack_sdk sends it)."""
        outputs = args.get("outputs")
        if isinstance(outputs, str):
            try:
                outputs = json.loads(outputs)
            except ValueError as exc:
                raise SlackError("invalid_arguments") from exc
        if not isinstance(outputs, dict):
            raise SlackError("invalid_arguments")
        execution = self._running_function(args)
        execution.update(state="completed", outputs=outputs)
        return {"ok": True}

    def _functions_complete_error(self, args: JSON) -> JSON:
        error = required(args, "error")
        execution = self._running_function(args)
        execution.update(state="failed", error=str(error))
        return {"ok": True}

    def _views_publish(self, args: JSON) -> JSON:
        """The user's Home tab: a ``home`` view of valid blocks, kept until the next publish."""
        user = str(required(args, "user_id"))
        if user not in self.users:
            raise SlackError("user_not_found")
        view = required(args, "view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise SlackError("invalid_arguments") from None
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] view.type must be home"]})
        errors = validate_blocks(view.get("blocks"))
        if errors:
            raise SlackError("invalid_blocks", errors=errors)
        previous = self.home_views.get(user)
        view_id = previous["id"] if previous is not None else "V" + secrets.token_hex(5).upper()
        self.home_views[user] = {**copy.deepcopy(view), "id": view_id, "team_id": self.team_id}
        self.home_publishes[user] = self.home_publishes.get(user, 0) + 1
        return {"ok": True, "view": copy.deepcopy(self.home_views[user])}

    def _channel(self, args: JSON) -> str:
        return self.resolve_channel(str(required(args, "channel")))

    def _auth_test(self, args: JSON) -> JSON:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Code Stream Test",
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: JSON) -> JSON:
        channel = self._channel(args)
        self.check_content(args)
        metadata = self.check_metadata(args)
        thread_ts = self.thread_root(channel, args.get("thread_ts") or None)
        msg = self.bot_message(
            channel,
            args,
            thread_ts=thread_ts,
            metadata=metadata,
            reply_broadcast=bool(thread_ts) and truthy(args.get("reply_broadcast")),
        )
        self.store(msg)
        return {"ok": True, "channel": channel, "ts": msg.ts, "message": self.message_payload(msg)}

    def _chat_update(self, args: JSON) -> JSON:
        channel = self._channel(args)
        msg = self.find(channel, args.get("ts"))
        if msg.bot_id != self.bot_id:
            raise SlackError("cant_update_message")
        if all(args.get(k) is None for k in ("text", "blocks", "attachments", "metadata")):
            raise SlackError("no_text")
        self.check_content(args, require=False)
        self.edit(msg, args, self.check_metadata(args))
        return {"ok": True, "channel": channel, "ts": msg.ts, "text": msg.text, "message": self.message_payload(msg)}

    def _chat_delete(self, args: JSON) -> JSON:
        channel = self._channel(args)
        msg = self.find(channel, args.get("ts"))
        if msg.bot_id != self.bot_id:
            raise SlackError("cant_delete_message")
        msg.deleted = True
        return {"ok": True, "channel": channel, "ts": msg.ts}

    def _chat_post_ephemeral(self, args: JSON) -> JSON:
        channel = self._channel(args)
        user = str(required(args, "user"))
        if user not in self.users:
            raise SlackError("user_not_found")
        self.check_content(args)
        msg = self.bot_message(
            channel, args, ephemeral_for=user, thread_ts=self.thread_root(channel, args.get("thread_ts") or None)
        )
        self.ephemerals.append(msg)
        return {"ok": True, "message_ts": msg.ts}

    def _chat_get_permalink(self, args: JSON) -> JSON:
        channel = self._channel(args)
        msg = self.find(channel, required(args, "message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{msg.ts.replace('.', '')}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _conversations_replies(self, args: JSON) -> JSON:
        channel = self._channel(args)
        ts = str(required(args, "ts"))
        found = self._index.get((channel, ts))
        root = (found.thread_ts or found.ts) if found is not None else ts
        parent = self._index.get((channel, root))
        if parent is None or parent.deleted:
            raise SlackError("thread_not_found")
        with_meta = truthy(args.get("include_all_metadata"))
        replies = _window([m for m in self.thread(channel, root) if m.ts != root], args)
        page, paging = _page(replies, args, 1000)
        # Like Slack, every page starts with the parent message.
        msgs = [self.message_payload(m, include_metadata=with_meta) for m in [parent, *page]]
        return {"ok": True, "messages": msgs, **paging}

    def _conversations_history(self, args: JSON) -> JSON:
        channel = self._channel(args)
        with_meta = truthy(args.get("include_all_metadata"))
        top = [m for m in self.messages(channel) if not m.is_reply or m.reply_broadcast]
        page, paging = _page(_window(top, args)[::-1], args, 100)
        msgs = [self.message_payload(m, include_metadata=with_meta) for m in page]
        return {"ok": True, "messages": msgs, **paging}

    def _conversations_info(self, args: JSON) -> JSON:
        return {"ok": True, "channel": copy.deepcopy(self.channels[self._channel(args)])}

    def _conversations_list(self, args: JSON) -> JSON:
        """Cursor-paged like Slack's: ``limit`` (default 100), ``cursor`` (an offset here),
        ``types`` (public_channel, private_channel), ``exclude_archived``."""
        types = str(args.get("types") or "public_channel").split(",")
        wanted = [
            c
            for c in self.channels.values()
            if not c.get("is_im")
            and (("private_channel" in types) if c.get("is_private") else ("public_channel" in types))
            and not (truthy(args.get("exclude_archived")) and c.get("is_archived"))
        ]
        limit = max(1, min(1000, int(args.get("limit") or 100)))
        start = int(args.get("cursor") or 0)
        page = wanted[start : start + limit]
        more = start + limit < len(wanted)
        return {
            "ok": True,
            "channels": copy.deepcopy(page),
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _views_open(self, args: JSON) -> JSON:
        """A modal: kept in ``views`` (a test submits it with the sender's ``view_submission``)."""
        trigger = str(required(args, "trigger_id"))
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not isinstance(view, dict) or view.get("type") != "modal" or not view.get("title"):
            raise SlackError("invalid_arguments")
        opened = {"trigger_id": trigger, "view": copy.deepcopy(view), "id": f"V{len(self.views) + 1:08d}"}
        self.views.append(opened)
        return {"ok": True, "view": {**copy.deepcopy(view), "id": opened["id"]}}

    def _users_info(self, args: JSON) -> JSON:
        user = self.users.get(str(required(args, "user")))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _users_lookup_by_email(self, args: JSON) -> JSON:
        email = str(required(args, "email")).strip().lower()
        for user in self.users.values():
            if str((user.get("profile") or {}).get("email") or "").lower() == email and not user.get("deleted"):
                return {"ok": True, "user": copy.deepcopy(user)}
        raise SlackError("users_not_found")

    def _usergroups_list(self, args: JSON) -> JSON:
        groups = []
        for group in self.usergroups.values():
            item = {k: v for k, v in group.items() if k != "users"}
            if truthy(args.get("include_users")):
                item["users"] = list(group["users"])
            groups.append(item)
        return {"ok": True, "usergroups": groups}

    def _usergroups_users_list(self, args: JSON) -> JSON:
        group = self.usergroups.get(str(required(args, "usergroup")))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}
