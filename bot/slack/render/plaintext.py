"""Block Kit as plain text, for the terminal: what a channel would show, without a Slack client.
Used by ``codestream-bot demo``."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_BARE_LINK = re.compile(r"<(https?://[^|>]+)>")
_USER = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|[^>]*)?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_SUBTEAM = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


def mrkdwn_to_text(text: str, user_name: Callable[[str], str] | None = None) -> str:
    name = user_name or (lambda uid: uid)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = _BARE_LINK.sub(lambda m: m.group(1), text)
    text = _USER.sub(lambda m: "@" + name(m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + m.group(1), text)
    text = _DATE.sub(lambda m: m.group(1), text)
    text = _SUBTEAM.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _BOLD.sub(r"\1", text)
    return unescape(text)


def blocks_to_text(blocks: list[dict[str, Any]], user_name: Callable[[str], str] | None = None) -> str:
    lines: list[str] = []

    def text_of(obj: Any) -> str:
        if isinstance(obj, dict):
            return mrkdwn_to_text(str(obj.get("text", "")), user_name)
        return ""

    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = text_of(block.get("text"))
            lines += [title, "=" * min(len(title), 60)]
        elif kind == "section":
            if block.get("text"):
                lines.append(text_of(block["text"]))
            fields = [text_of(f).replace("\n", ": ", 1) for f in block.get("fields", [])]
            lines += [f"  {f}" for f in fields]
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                lines.append(f"  [ {text_of(accessory.get('text'))} ]")
        elif kind == "context":
            lines.append("  " + " ".join(text_of(e) for e in block.get("elements", [])))
        elif kind == "actions":
            lines.append("  " + "  ".join(f"[ {text_of(e.get('text'))} ]" for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("-" * 40)
    return "\n".join(line.rstrip() for line in lines)
