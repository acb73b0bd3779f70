"""The checks behind the settings (``bot.app.settings``): Slack id lists, URLs, what is missing
for Code Stream and Slack, and how a problem or a secret is shown (one line naming the
variable; secrets never echoed)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from bot.core.logs import mask_url

SECRET_FIELDS = frozenset(
    {
        "codestream_refresh_token",
        "codestream_token",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "bot_webhook_token",
    }
)


CHANNEL_NAME = re.compile(r"#?[a-z0-9][a-z0-9._-]{0,79}")
_SLACK_ID = re.compile(r"[A-Z0-9]{3,}")


def id_list(value: str | None, prefixes: tuple[str, ...], what: str) -> str | None:
    """A comma-separated list of Slack ids, each checked; None when empty."""
    if value is None or not value.strip():
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item[0] not in prefixes or not _SLACK_ID.fullmatch(item)]
    if bad:
        shown = ", ".join(repr(b[:30]) for b in bad[:3])
        raise ValueError(f"must be comma-separated {what}; these are not: {shown}")
    return ",".join(items)


def http_url(value: str, *, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL such as https://{name}.example.com")
    if "@" in parts.netloc:
        # It would end up in every execution link shown in Slack; credentials go in their own variables.
        raise ValueError(f"must not carry a user or password (use https://{name}.example.com and the token variables)")
    return value.rstrip("/")


def url_passwords(*urls: str) -> list[str]:
    """The passwords URLs carry (scheme://user:password@host, ?password=), for the redactor."""
    values: list[str] = []
    for url in urls:
        parts = urlsplit(url) if "://" in url else None
        userinfo = parts.netloc.rpartition("@")[0] if parts is not None else ""
        if ":" in userinfo:
            values.append(userinfo.split(":", 1)[1])
        for key, value in parse_qsl(parts.query if parts is not None else ""):
            if key.lower() == "password":
                values.append(value)
    return values


def describe_error(error: dict[str, Any]) -> str:
    """One line naming the variable; a secret's value is never shown, a URL's password masked."""
    field = str(error["loc"][0]) if error.get("loc") else "configuration"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    line = f"{field.upper()}: {message}"
    if field not in SECRET_FIELDS and error.get("type") not in ("missing",) and "input" in error:
        shown = mask_url(repr(error["input"]))  # a URL's password is a secret too
        line += f" (got {shown[:80]})"
    return line


def slack_problems(
    bot_token: SecretStr | None, app_token: SecretStr | None, signing_secret: SecretStr | None, socket_mode: bool
) -> list[str]:
    """What is missing to talk to Slack in this mode (empty when ready)."""
    problems: list[str] = []
    if not bot_token:
        problems.append("SLACK_BOT_TOKEN: not set; the bot token (xoxb-...) from the app's OAuth page")
    elif not bot_token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: does not look like a bot token (should start with xoxb-)")
    if socket_mode:
        if not app_token:
            problems.append(
                "SLACK_APP_TOKEN: not set; Socket Mode needs an app-level token (xapp-...) "
                "with the connections:write scope"
            )
        elif not app_token.get_secret_value().startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: does not look like an app-level token (xapp-...)")
    elif not signing_secret:
        problems.append(
            "SLACK_SIGNING_SECRET: not set; HTTP mode needs the signing secret (the app's Basic Information page)"
        )
    return problems


def database_url(value: str) -> str:
    """BOT_DATABASE_URL with its async driver (``sqlite:`` and ``postgresql://`` are accepted)."""
    if value.startswith("sqlite:"):
        value = "sqlite+aiosqlite:" + value.removeprefix("sqlite:")
    elif value.startswith(("postgresql://", "postgres://")):
        value = "postgresql+asyncpg://" + value.split("://", 1)[1]
    if not value.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        raise ValueError("must be sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
    return value


def codestream_problems(
    url: str | None, auth: str, refresh_token: SecretStr | None, token: SecretStr | None
) -> list[str]:
    """What is missing to talk to Code Stream (empty when ready)."""
    problems: list[str] = []
    if not url:
        problems.append("CODESTREAM_URL: not set; the base URL of vRA, e.g. https://vra.example.com")
    if auth in ("vra", "csp") and not refresh_token:
        what = "a vRA refresh token" if auth == "vra" else "a VMware Cloud API token"
        problems.append(f"CODESTREAM_REFRESH_TOKEN: not set; CODESTREAM_AUTH={auth} needs {what}")
    if auth == "token" and not token:
        problems.append("CODESTREAM_TOKEN: not set; CODESTREAM_AUTH=token needs a bearer token")
    return problems
