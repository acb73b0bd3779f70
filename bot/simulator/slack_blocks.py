"""Block Kit validation with Slack's limits, so rendering bugs surface as `invalid_blocks`.

Part of the Slack stand-in (`bot.simulator.slack_api`). Errors follow Slack's own shape:
``"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_MESSAGE_TEXT = 40000

BLOCK_TYPES = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "header",
        "input",
        "file",
        "rich_text",
        "markdown",
        "video",
        "call",
        "table",
        "context_actions",
    }
)
INTERACTIVE_ELEMENTS = frozenset(
    {
        "button",
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "workflow_button",
        "rich_text_input",
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
    }
)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()

    def err(self, path: str, problem: str) -> None:
        self.errors.append(f"{problem} [json-pointer:{path}]")

    def max_len(self, value: Any, limit: int, path: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.err(path, "missing required field")
            return
        if not isinstance(value, str):
            self.err(path, "must be a string")
        elif len(value) > limit:
            self.err(path, f"must be less than {limit + 1} characters")
        elif required and not value:
            self.err(path, "must be more than 0 characters")

    def text_obj(self, obj: Any, path: str, *, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err(path, "must be an object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.err(f"{path}/type", f"must be one of {', '.join(allowed)}")
        self.max_len(obj.get("text"), limit, f"{path}/text", required=True)

    def confirm(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            self.err(path, "must be an object")
            return
        self.text_obj(obj.get("title"), f"{path}/title", limit=100, plain_only=True)
        self.text_obj(obj.get("text"), f"{path}/text", limit=300)
        self.text_obj(obj.get("confirm"), f"{path}/confirm", limit=30, plain_only=True)
        self.text_obj(obj.get("deny"), f"{path}/deny", limit=30, plain_only=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.err(f"{path}/style", "must be one of primary, danger")

    def element(self, el: Any, path: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            self.err(path, "must be an object")
            return
        kind = el.get("type")
        if kind == "image":
            self.max_len(el.get("image_url"), 3000, f"{path}/image_url", required=True)
            self.max_len(el.get("alt_text"), 2000, f"{path}/alt_text", required=True)
            return
        if kind not in INTERACTIVE_ELEMENTS:
            self.err(f"{path}/type", f"unsupported element type {kind!r}")
            return
        action_id = el.get("action_id")
        self.max_len(action_id, 255, f"{path}/action_id")
        if isinstance(action_id, str):
            if action_id in action_ids:
                self.err(f"{path}/action_id", f"duplicate action_id {action_id!r}")
            action_ids.add(action_id)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{path}/confirm")
        if kind == "button":
            self.text_obj(el.get("text"), f"{path}/text", limit=75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{path}/value")
            self.max_len(el.get("url"), 3000, f"{path}/url")
            if el.get("style") not in (None, "primary", "danger"):
                self.err(f"{path}/style", "must be one of primary, danger")
        elif kind == "overflow":
            options = el.get("options")
            if not isinstance(options, list) or not 2 <= len(options) <= 5:
                self.err(f"{path}/options", "must have between 2 and 5 items")
        elif kind.endswith("select") and "options" in el:
            options = el["options"]
            if not isinstance(options, list) or len(options) > 100:
                self.err(f"{path}/options", "must have at most 100 items")

    def block(self, block: Any, path: str) -> None:
        if not isinstance(block, dict):
            self.err(path, "must be an object")
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.err(f"{path}/type", f"unsupported type {kind!r}" if kind else "missing required field")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, 255, f"{path}/block_id")
            if isinstance(block_id, str):
                if block_id in self.block_ids:
                    self.err(f"{path}/block_id", f"duplicate block_id {block_id!r}")
                self.block_ids.add(block_id)
        action_ids: set[str] = set()
        if kind == "section":
            self.section(block, path, action_ids)
        elif kind == "header":
            self.text_obj(block.get("text"), f"{path}/text", limit=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.err(f"{path}/elements", "must provide at least 1 item")
                return
            if len(elements) > 10:
                self.err(f"{path}/elements", "must provide no more than 10 items")
            for i, el in enumerate(elements):
                sub = f"{path}/elements/{i}"
                if isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                    self.text_obj(el, sub, limit=3000)
                elif isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, sub, action_ids)
                else:
                    self.err(f"{sub}/type", "must be one of image, plain_text, mrkdwn")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.err(f"{path}/elements", "must provide at least 1 item")
                return
            if len(elements) > 25:
                self.err(f"{path}/elements", "must provide no more than 25 items")
            for i, el in enumerate(elements):
                self.element(el, f"{path}/elements/{i}", action_ids)
        elif kind == "image":
            self.max_len(block.get("image_url"), 3000, f"{path}/image_url", required=True)
            self.max_len(block.get("alt_text"), 2000, f"{path}/alt_text", required=True)
        elif kind == "markdown":
            self.max_len(block.get("text"), 12000, f"{path}/text", required=True)

    def section(self, block: dict[str, Any], path: str, action_ids: set[str]) -> None:
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            self.err(path, "must provide either text or fields")
        if text is not None:
            self.text_obj(text, f"{path}/text", limit=3000)
        if fields is not None:
            if not isinstance(fields, list) or not fields:
                self.err(f"{path}/fields", "must provide at least 1 item")
            else:
                if len(fields) > 10:
                    self.err(f"{path}/fields", "must provide no more than 10 items")
                for i, f in enumerate(fields):
                    self.text_obj(f, f"{path}/fields/{i}", limit=2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{path}/accessory", action_ids)


def validate_blocks(blocks: Any) -> list[str]:
    """Return Slack-style error strings for `blocks`; an empty list means valid."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.err("/blocks", "must be an array")
        return checker.errors
    if len(blocks) > MAX_BLOCKS:
        checker.err("/blocks", f"must provide no more than {MAX_BLOCKS} items")
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}")
    return checker.errors
