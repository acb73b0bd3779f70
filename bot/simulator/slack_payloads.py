"""Parts of what Slack sends *to* an app, as documented: the action of a ``block_actions``
payload (a button, or an overflow menu's choice), the Events API envelope, the retry headers.

The Slack stand-in's sender (`bot.simulator.slack_sender`) fills in who, where and on what.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

from bot.simulator.slack_models import JSON


def trigger_id() -> str:
    return f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def retry_headers(retry: int) -> dict[str, str] | None:
    """What Slack adds when it sends an interaction again (``retry`` > 0)."""
    return {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None


def elements(blocks: list[JSON]) -> Iterator[tuple[str | None, JSON]]:
    """(block_id, element) for every interactive element in `blocks`."""
    for block in blocks:
        block_id = block.get("block_id")
        for el in block.get("elements") or []:
            if isinstance(el, dict):
                yield block_id, el
        if isinstance(block.get("accessory"), dict):
            yield block_id, block["accessory"]


def find_element(blocks: list[JSON], action_id: str, option: str | None) -> tuple[str | None, JSON]:
    """(block_id, element) of the element with ``action_id`` (offering ``option``, when given);
    (None, {}) when there is none."""
    for block_id, el in elements(blocks):
        if el.get("action_id") != action_id:
            continue
        if option is not None and option not in [o.get("value") for o in el.get("options") or []]:
            continue  # several menus share an action id (a list's rows): the one offering it
        return block_id, el
    return None, {}


def action(action_id: str, block_id: str | None, text: object, value: object, kind: object) -> JSON:
    """One entry of a ``block_actions`` payload's ``actions`` (a block without an id gets one)."""
    return {
        "action_id": action_id,
        "block_id": block_id or secrets.token_hex(3),
        "text": text,
        "value": value,
        "type": kind,
        "action_ts": f"{time.time():.6f}",
    }


def message_action(action_id: str, block_id: str | None, element: JSON, value: str | None, option: str | None) -> JSON:
    """The click on ``element`` of a message: its text, value and style unless ``value`` is
    given; with ``option``, the choice of that value in an overflow menu (``selected_option``)."""
    clicked = action(
        action_id,
        block_id,
        element.get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
        value if value is not None else element.get("value"),
        element.get("type", "button"),
    )
    if option is not None:
        chosen = [o for o in element.get("options") or [] if o.get("value") == option]
        if not chosen:
            raise ValueError(f"no option {option!r} in {action_id}")
        clicked["selected_option"] = chosen[0]
        clicked["type"] = "overflow"
        clicked.pop("text", None)
        clicked["value"] = None
    if clicked["value"] is None:
        del clicked["value"]
    if "style" in element:
        clicked["style"] = element["style"]
    return clicked


def event_envelope(
    event: JSON, *, token: str, team_id: str, api_app_id: str, bot_user_id: str, event_id: str | None
) -> JSON:
    """The Events API ``event_callback`` around ``event``, authorized for the bot user; a new
    ``event_id`` unless one is given (a retry replays the first delivery's)."""
    now = time.time()
    return {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "api_app_id": api_app_id,
        "event": {"event_ts": event.get("ts") or f"{now:.6f}", **event},
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
