"""Logging: one line per event, JSON or text, with a request id that follows one Slack
interaction through perform() to Code Stream, and redaction of every secret.

Redaction runs on the final formatted line, so tokens are removed even when they hide inside
exception text or a library's message.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable
from typing import Final

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REDACTED: Final = "[REDACTED]"
_PATTERNS: Final = [
    re.compile(r"xox[abposre]-[A-Za-z0-9-]+"),  # Slack bot/user/config tokens
    re.compile(r"xapp-[A-Za-z0-9-]+"),  # Slack app-level tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),  # Authorization values
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWTs (vRA/CSP tokens)
    re.compile(
        r"(?i)((?:refresh_?token|api_?token|access_?token|token|secret|client_?secret|api_?key|private_?key"
        r"|password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    ),  # key=value, key: value, "key": "value" — passwords in CLI flags, YAML and JSON too
    re.compile(r"(?i)(--password[= ]\s*)(?!-)\S+"),  # --password …
    re.compile(r"(?i)((?:docker|podman|helm\s+registry)\s+login\b[^\n]*?\s-p\s+)\S+"),  # docker login -p …
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),  # Authorization: Basic …
    re.compile(r"()\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"()\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,})"),
    re.compile(r"()-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    # The password in a URL's userinfo, up to the last @ before the host: scheme://user:PASSWORD@host
    re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)\S*?(?=@[^\s@/]*(?:[/?#\s\"']|$))"),
    re.compile(r"(?i)([?&]password=)[^\s&#\"']+"),  # ...or in its query
]


class Redactor:
    """Removes known secret values and anything shaped like a token from text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add_secrets(self, secrets: Iterable[str | None]) -> None:
        # Very short values would redact ordinary words; real secrets are long.
        self._secrets.update(s for s in secrets if s and len(s) >= 6)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


redact = Redactor()


def mask_url(text: str) -> str:
    """``mysql://bot:Sup3r@db/x`` -> ``mysql://bot:***@db/x``: for messages and ``check``
    output, where a configured URL is shown but its password must not be."""
    return _URL_PASSWORD_PARAM.sub(r"\1***", _URL_USERINFO.sub(r"\1***", text))


_URL_USERINFO: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)\S*?(?=@[^\s@/]*(?:[/?#\s\"']|$))")
_URL_PASSWORD_PARAM: Final = re.compile(r"(?i)([?&]password=)[^\s&#\"']+")
