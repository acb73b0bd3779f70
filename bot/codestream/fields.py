"""Lenient field types shared by the Code Stream models, and the base model.

Real servers disagree with the official spec (its own example sends ``timeStampInMicros`` as a
date string while the schema says int64; ``serverURL`` is a URI object, a string or absent), and
newer versions add fields. So every field is optional, unknown fields are kept, and values of a
surprising type are coerced or dropped instead of failing validation: a strange field must never
stop the bot from showing or rerunning an event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from bot.codestream.ids import is_valid_id


def _lenient_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def lenient_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _url_like(value: Any) -> str | None:
    """serverURL is documented as a java.net.URI object; some servers send a plain string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        scheme, host = value.get("scheme"), value.get("host")
        if isinstance(scheme, str) and isinstance(host, str) and scheme and host:
            port = value.get("port")
            port_part = f":{port}" if isinstance(port, int) and port > 0 else ""
            path = value.get("path") if isinstance(value.get("path"), str) else ""
            return f"{scheme}://{host}{port_part}{path}"
        for key in ("string", "uri", "href"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def _int_or_str(value: Any) -> int | str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


LenientInt = Annotated[int | None, BeforeValidator(_lenient_int)]
LenientStr = Annotated[str | None, BeforeValidator(lenient_str)]
UrlStr = Annotated[str | None, BeforeValidator(_url_like)]
IntOrStr = Annotated[int | str | None, BeforeValidator(_int_or_str)]


def _str_list(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


LenientDict = Annotated[dict[str, Any], BeforeValidator(_dict_or_empty)]
LenientStrList = Annotated[list[str], BeforeValidator(_str_list)]


def parse_time(value: int | str | None) -> datetime | None:
    """Parse Code Stream's several time formats: micros since epoch or ISO-ish strings."""
    if value is None:
        return None
    if isinstance(value, int):
        seconds = value / 1_000_000 if value > 10**14 else value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def id_from_link(link: str | None) -> str | None:
    """``/codestream/api/executions/<uuid>`` -> ``<uuid>`` (None when it is not a UUID)."""
    if not link:
        return None
    last = link.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return last.lower() if is_valid_id(last) else None


class CodeStreamModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
