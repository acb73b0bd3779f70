"""Code Stream ids. Validate them before they go anywhere near a URL.

Two rules: ids people type are strict (``validate_id``: a UUID, as Code Stream makes them); ids
Code Stream itself gave the bot (events, executions, approvals it listed) are its own, so they
are taken in any shape that is one safe URL path segment (``validate_server_id``), and the same
rule is applied when a button is drawn for one and when the button is read back."""

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


# One URL path segment: no '/', '%', '?', '#', whitespace or control characters, and never '.' or
# '..' (it starts with a letter or digit).
_SERVER_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")


def validate_server_id(raw: str) -> str:
    """An id Code Stream gave the bot, made safe for a URL path; InvalidId otherwise. A UUID
    is lower-cased (its canonical form, as ``validate_id``); any other shape is kept as is."""
    if not isinstance(raw, str) or len(raw) > 200:
        raise InvalidId()
    candidate = raw.strip()
    if _UUID.match(candidate.lower()):
        return candidate.lower()
    if not _SERVER_ID.match(candidate):
        raise InvalidId()
    return candidate


def is_server_id(raw: str) -> bool:
    try:
        validate_server_id(raw)
    except InvalidId:
        return False
    return True


def is_valid_id(raw: str) -> bool:
    try:
        validate_id(raw)
    except InvalidId:
        return False
    return True
