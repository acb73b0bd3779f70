"""All configuration, from environment variables (and an optional ``.env``).

Nothing else in the bot reads the environment. Invalid settings fail at start-up with one
readable line per problem that names the variable; secret values are never echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.core.logs import mask_url
from bot.errors import ConfigError
from bot.slack.channels import CHANNEL_ID

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


def _id_list(value: str | None, prefixes: tuple[str, ...], what: str) -> str | None:
    """A comma-separated list of Slack ids, each checked; None when empty."""
    if value is None or not value.strip():
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    bad = [item for item in items if item[0] not in prefixes or not _SLACK_ID.fullmatch(item)]
    if bad:
        shown = ", ".join(repr(b[:30]) for b in bad[:3])
        raise ValueError(f"must be comma-separated {what}; these are not: {shown}")
    return ",".join(items)


def _http_url(value: str, *, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL such as https://{name}.example.com")
    if "@" in parts.netloc:
        # It would end up in every execution link shown in Slack; credentials go in their own variables.
        raise ValueError(f"must not carry a user or password (use https://{name}.example.com and the token variables)")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Field names are the environment variable names, lower-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    # --- Code Stream -------------------------------------------------------------------------
    codestream_url: str | None = None
    codestream_auth: Literal["vra", "csp", "token"] = "vra"
    codestream_refresh_token: SecretStr | None = None
    codestream_token: SecretStr | None = None
    codestream_csp_url: str = "https://console.cloud.vmware.com"
    codestream_api_version: str = Field("2019-10-17", pattern=r"^\d{4}-\d{2}-\d{2}$")
    codestream_ca_bundle: Path | None = None
    codestream_verify_tls: bool = True
    codestream_timeout: float = Field(30.0, gt=0, le=600)
    # The most of one Code Stream answer the bot reads; a larger one is an error, not a memory spike.
    codestream_max_response_mb: float = Field(8.0, ge=0.1, le=1024)
    codestream_ui_url: str = "{base}/codestream/#/executions/{id}"

    # --- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # Alerts and digests the bot posts or redraws in one channel: a burst of 3, then this many a
    # second (Slack allows about one chat.postMessage a second per channel).
    bot_slack_channel_rate: float = Field(1.0, gt=0, le=100)

    # --- The bot -------------------------------------------------------------------------------
    bot_database_url: str = "sqlite+aiosqlite:///./codestream-bot.db"
    bot_config: Path | None = None
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # None: JSON when stderr is not a terminal (containers), text on a terminal.
    bot_log_format: Literal["json", "text"] | None = None
    # A finished intent stays claimed this long: repeats of it are told who acted. At least
    # Slack's 5-minute signature window, so nothing Slack would still accept can run twice.
    bot_dedupe_seconds: float = Field(300.0, ge=1, le=86_400)
    # An action whose outcome is unknown (the POST may have reached Code Stream) is read back
    # for this long; only when no new execution appeared by then is it "safe to try again".
    bot_reconcile_seconds: float = Field(300.0, ge=1, le=86_400)
    # Audit rows older than this many days are deleted; 0 keeps them for ever (the default).
    bot_audit_retention_days: float = Field(0.0, ge=0, le=36_500)
    bot_health_port: int = Field(8080, ge=0, le=65_535)  # Socket Mode: /healthz, /readyz, /metrics
    bot_shutdown_grace: float = Field(20.0, ge=0, le=600)  # seconds to finish in-flight actions on SIGTERM

    # --- Access (simple cases; rules in BOT_CONFIG) -----------------------------------------------
    bot_allowed_users: str | None = None  # comma-separated Slack user ids
    bot_allowed_usergroups: str | None = None  # comma-separated Slack user-group ids (S…)
    bot_allowed_channels: str | None = None  # comma-separated channel ids where actions are allowed
    # comma-separated Slack team (workspace) ids whose people may use the bot at all; unset:
    # only the bot's own workspace (auth.test), so Slack Connect guests are refused.
    bot_allowed_teams: str | None = None

    # --- Failure alerts (watcher) --------------------------------------------------------------
    bot_alert_channel: str | None = None  # fallback channel id when no routing rule matches
    bot_watch: bool | None = None  # None: on when alerts can go somewhere or Slack is set (subscriptions)
    # Mention the person who pushed in the alert (BOT_CONFIG people: map, then users.lookupByEmail,
    # which needs the users:read.email scope; the manifest declares it, approvals need it too).
    bot_mention_author: bool = False
    # Another failure of the same pipeline on the same branch within this many hours of its
    # unresolved alert goes in that alert's thread (0: every failure is a new alert).
    bot_repeat_window_hours: float = Field(24.0, ge=0, le=24 * 30)
    # Storms: more than this many failures due for one channel within BOT_DIGEST_WINDOW_SECONDS
    # (its alerts in that window included) are listed in one digest message (0: never).
    bot_digest_threshold: int = Field(5, ge=0, le=1000)
    bot_digest_window_seconds: float = Field(120.0, ge=1, le=3600)
    bot_watch_interval: float = Field(30.0, ge=1, le=3600)
    bot_watch_lookback: float = Field(900.0, ge=0, le=30 * 86_400)  # seconds; first start only
    bot_webhook_token: SecretStr | None = None  # X-Codestream-Bot-Token for POST /hooks/codestream
    bot_watch_page_size: int = Field(50, ge=1, le=500)
    # An alert Slack refuses for good (bot not in the channel...) is retried for this long.
    bot_undeliverable_hours: float = Field(24.0, gt=0, le=24 * 30)
    # Code Stream approvals (user operations) posted where routing sends kind `approval`.
    bot_approvals: bool | None = None  # None: on whenever the failure watcher is on
    bot_approvals_interval: float = Field(30.0, ge=1, le=3600)
    # Only people the approval lists (their Slack e-mail in `approvers`, or a member of a Slack
    # group BOT_CONFIG's approver_groups maps one of its groups to) may decide; off: the access
    # policy's `approve` action alone decides.
    bot_approvals_listed_only: bool = True

    # --- Follow-through ------------------------------------------------------------------------
    bot_follow_max_hours: float = Field(6.0, gt=0, le=7 * 24)
    bot_follow_poll_budget: float = Field(2.0, gt=0, le=100)  # execution reads per second, all trackers
    # How long a dead replica's follow-up lease blocks the others (renewed every third of it).
    bot_follow_lease_seconds: float = Field(30.0, ge=1, le=600)

    @field_validator(*SECRET_FIELDS, mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        # An empty BOT_WEBHOOK_TOKEN must not open the webhook to anyone, nor a blank signing
        # secret turn verification off: blank means not set, everywhere.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("bot_alert_channel")
    @classmethod
    def _check_alert_channel(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if CHANNEL_ID.fullmatch(value) or CHANNEL_NAME.fullmatch(value):
            return value  # a name is resolved to its id at start-up
        raise ValueError("must be a channel id such as C012AB3CD or a channel name such as #ci-alerts")

    @field_validator("bot_allowed_users")
    @classmethod
    def _check_users(cls, value: str | None) -> str | None:
        return _id_list(value, ("U", "W"), "Slack member ids such as U012AB3CD (profile > ⋮ > Copy member ID)")

    @field_validator("bot_allowed_usergroups")
    @classmethod
    def _check_usergroups(cls, value: str | None) -> str | None:
        return _id_list(value, ("S",), "Slack user-group ids such as S0123RELEASE (not @handles)")

    @field_validator("bot_allowed_channels")
    @classmethod
    def _check_channels(cls, value: str | None) -> str | None:
        return _id_list(value, ("C", "G", "D"), "channel ids such as C012AB3CD (channel details > bottom)")

    @field_validator("bot_allowed_teams")
    @classmethod
    def _check_teams(cls, value: str | None) -> str | None:
        return _id_list(value, ("T", "E"), "Slack team ids such as T012AB3CD")

    @field_validator("codestream_url")
    @classmethod
    def _check_codestream_url(cls, value: str | None) -> str | None:
        return _http_url(value, name="vra") if value else None

    @field_validator("codestream_csp_url")
    @classmethod
    def _check_csp_url(cls, value: str) -> str:
        return _http_url(value, name="console.cloud")

    @field_validator("slack_api_url")
    @classmethod
    def _check_slack_api_url(cls, value: str) -> str:
        value = _http_url(value, name="slack")
        return value + "/"

    @field_validator("codestream_ui_url")
    @classmethod
    def _check_ui_url(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain the placeholder {id} (and may use {base})")
        try:
            value.format(base="https://x", id="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("may only use the placeholders {base} and {id}") from exc
        return value

    @field_validator("codestream_ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist")
        return value

    @field_validator("bot_config")
    @classmethod
    def _check_bot_config(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {value} does not exist")
        return value

    @field_validator("bot_database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value.startswith("sqlite:"):
            value = "sqlite+aiosqlite:" + value.removeprefix("sqlite:")
        elif value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
            raise ValueError("must be sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    # --- Derived checks: what a feature needs ------------------------------------------------

    def codestream_problems(self) -> list[str]:
        """What is missing to talk to Code Stream (empty when ready)."""
        problems: list[str] = []
        if not self.codestream_url:
            problems.append("CODESTREAM_URL: not set; the base URL of vRA, e.g. https://vra.example.com")
        if self.codestream_auth in ("vra", "csp") and not self.codestream_refresh_token:
            what = "a vRA refresh token" if self.codestream_auth == "vra" else "a VMware Cloud API token"
            problems.append(f"CODESTREAM_REFRESH_TOKEN: not set; CODESTREAM_AUTH={self.codestream_auth} needs {what}")
        if self.codestream_auth == "token" and not self.codestream_token:
            problems.append("CODESTREAM_TOKEN: not set; CODESTREAM_AUTH=token needs a bearer token")
        return problems

    def slack_problems(self, *, socket_mode: bool) -> list[str]:
        problems: list[str] = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN: not set; the bot token (xoxb-...) from the app's OAuth page")
        elif not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN: does not look like a bot token (should start with xoxb-)")
        if socket_mode:
            if not self.slack_app_token:
                problems.append(
                    "SLACK_APP_TOKEN: not set; Socket Mode needs an app-level token (xapp-...) "
                    "with the connections:write scope"
                )
            elif not self.slack_app_token.get_secret_value().startswith("xapp-"):
                problems.append("SLACK_APP_TOKEN: does not look like an app-level token (xapp-...)")
        elif not self.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET: not set; HTTP mode needs the signing secret (the app's Basic Information page)"
            )
        return problems

    @property
    def slack_configured(self) -> bool:
        return self.slack_bot_token is not None

    def execution_ui_url(self, execution_id: str) -> str:
        base = self.codestream_url or ""
        return self.codestream_ui_url.format(base=base, id=execution_id)

    def execution_link(self, execution_id: str | None) -> str | None:
        """The human link of an execution, when there is one."""
        return self.execution_ui_url(execution_id) if execution_id else None


def secret_values(settings: Settings) -> list[str]:
    """The configured secrets, for the log redactor."""
    values: list[str] = []
    for name in SECRET_FIELDS:
        secret = getattr(settings, name, None)
        if isinstance(secret, SecretStr):
            values.append(secret.get_secret_value())
    # A URL may carry a password: scheme://user:password@host
    for url in (settings.bot_database_url, settings.codestream_url or ""):
        parts = urlsplit(url) if "://" in url else None
        userinfo = parts.netloc.rpartition("@")[0] if parts is not None else ""
        if ":" in userinfo:
            values.append(userinfo.split(":", 1)[1])
        for key, value in parse_qsl(parts.query if parts is not None else ""):
            if key.lower() == "password":
                values.append(value)
    return values


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "configuration"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    line = f"{field.upper()}: {message}"
    if field not in SECRET_FIELDS and error.get("type") not in ("missing",) and "input" in error:
        shown = mask_url(repr(error["input"]))  # a URL's password is a secret too
        line += f" (got {shown[:80]})"
    return line


def load_settings(env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env") -> Settings:
    """Build Settings from the process environment, or only from ``env`` when given (tests).

    Raises ConfigError with one line per problem.
    """
    try:
        if env is None:
            return Settings(_env_file=env_file)
        given: dict[str, Any] = {key.lower(): value for key, value in env.items()}
        return _OnlyGivenSettings(**given)
    except ValidationError as exc:
        raise ConfigError([_describe(dict(e)) for e in exc.errors()]) from None


class _OnlyGivenSettings(Settings):
    """Settings that read nothing but their keyword arguments: hermetic tests and tools."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
