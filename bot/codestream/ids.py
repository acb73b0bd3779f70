"""Code Stream ids are UUIDs. Validate them before they go anywhere near a URL."""

from __future__ import annotations

import re
from typing import Final

from bot.codestream.errors import InvalidId

_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Long enough for any UUID with whitespace; anything longer is rejected without parsing.
_MAX_LEN: Final = 64


def validate_id(raw: str) -> str:
    """Return the canonical (lower-case) id, or raise InvalidId.

    Only the canonical hyphenated form is accepted: path tricks such as ``../x`` or
    ``%2e%2e`` can never match, so no request is built from them.
    """
    if not isinstance(raw, str) or len(raw) > _MAX_LEN:
        raise InvalidId()
    candidate = raw.strip().lower()
    if not _UUID.match(candidate):
        raise InvalidId()
    return candidate


def is_valid_id(raw: str) -> bool:
    try:
        validate_id(raw)
    except InvalidId:
        return False
    return True
