"""All configuration, from environment variables (and an optional ``.env``).

Nothing else in the bot reads the environment. Invalid settings fail at start-up with one
readable line per problem that names the variable; secret values are never echoed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.app import setting_checks as checks
from bot.app.setting_checks import SECRET_FIELDS
from bot.errors import ConfigError
from bot.slack.channels import CHANNEL_ID


class Settings(BaseSettings):
    """Field names are the environment variable names, lower-cased. Each field's description is
    the configuration reference (``codestream-bot config --markdown``, docs/OPERATING.md)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    # --- Code Stream -------------------------------------------------------------------------
    codestream_url: str | None = Field(
        None,
        description="Base URL of vRA, without `/codestream`. Needed to talk to Code Stream.",
        examples=["https://vra.example.com"],
    )
    codestream_auth: Literal["vra", "csp", "token"] = Field(
        "vra",
        description="How the bot logs in: `vra` (vRA 8 on-premises: a refresh token exchanged at "
        "`/iaas/api/login`), `csp` (vRA Cloud: a VMware Cloud API token authorized at "
        "`CODESTREAM_CSP_URL`), `token` (a ready bearer token, `CODESTREAM_TOKEN`; it cannot be refreshed).",
    )
    codestream_refresh_token: SecretStr | None = Field(
        None, description="vRA refresh token (`CODESTREAM_AUTH=vra`) or VMware Cloud API token (`csp`)."
    )
    codestream_token: SecretStr | None = Field(None, description="Bearer token for `CODESTREAM_AUTH=token`.")
    codestream_csp_url: str = Field(
        "https://console.cloud.vmware.com", description="CSP gateway used with `CODESTREAM_AUTH=csp`."
    )
    codestream_api_version: str = Field(
        "2019-10-17",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="Sent as the `apiVersion` parameter of every Code Stream request.",
    )
    codestream_ca_bundle: Path | None = Field(
        None, description="PEM file of the CA that signed vRA's certificate (the file must exist)."
    )
    codestream_verify_tls: bool = Field(
        True,
        description="`false` turns TLS verification off (logged loudly; use `CODESTREAM_CA_BUNDLE` instead).",
    )
    codestream_timeout: float = Field(30.0, gt=0, le=600, description="Seconds per Code Stream request.")
    codestream_max_response_mb: float = Field(
        8.0,
        ge=0.1,
        le=1024,
        description="The most of one Code Stream answer the bot reads, in MB; a larger answer is an error "
        "for the operator (a watcher cycle carries on), not a memory spike.",
    )
    codestream_ui_url: str = Field(
        "{base}/codestream/#/executions/{id}",
        description="The execution link shown in Slack: must contain `{id}`, may use `{base}` "
        "(`CODESTREAM_URL`), no other placeholder.",
    )

    # --- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        None, description="The Bot User OAuth Token (`xoxb-…`); `serve` needs it."
    )
    slack_signing_secret: SecretStr | None = Field(
        None, description="HTTP mode: the app's signing secret; verifies that requests come from Slack."
    )
    slack_app_token: SecretStr | None = Field(
        None,
        description="Socket Mode: an app-level token (`xapp-…`, scope `connections:write`). When set, "
        "`serve` uses Socket Mode unless `--mode http` is given.",
    )
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (for a proxy, or tests).")
    bot_slack_channel_rate: float = Field(
        1.0,
        gt=0,
        le=100,
        description="Alerts and digests posted or redrawn per second in one channel, after a burst of 3 "
        "(Slack allows about one message a second per channel).",
    )

    # --- The bot -------------------------------------------------------------------------------
    bot_database_url: str = Field(
        "sqlite+aiosqlite:///./codestream-bot.db",
        description="The bot's database: SQLite for one process, PostgreSQL "
        "(`postgresql+asyncpg://user@host/db`) when several replicas run. `sqlite:` and "
        "`postgresql://` are accepted and given their driver.",
    )
    bot_config: Path | None = Field(
        None,
        description="Optional YAML file with routes, access rules, people and approver groups "
        "(the `BOT_CONFIG` file; the file must exist).",
    )
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    bot_log_format: Literal["json", "text"] | None = Field(
        None, description="Log line format. Unset: JSON unless stderr is a terminal."
    )
    bot_dedupe_seconds: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="After an action on an event ends, further requests for that event within this many "
        "seconds are told who acted instead of running. Keep it at least Slack's 5-minute signature "
        "window, so nothing Slack would still accept can run twice.",
    )
    bot_reconcile_seconds: float = Field(
        300.0,
        ge=1,
        le=86_400,
        description="How long an action whose outcome is unknown (the request may have reached Code "
        'Stream) is read back; only when no new run appeared by then is it "safe to try again".',
    )
    bot_audit_retention_days: float = Field(
        0.0,
        ge=0,
        le=36_500,
        description="Delete finished audit rows older than this many days; `0` keeps them for ever.",
    )
    bot_health_port: int = Field(
        8080,
        ge=0,
        le=65_535,
        description="Socket Mode: the port of `/healthz`, `/readyz`, `/metrics` and `POST /hooks/codestream` "
        "(in HTTP mode they are on the `serve --port`).",
    )
    bot_shutdown_grace: float = Field(
        20.0,
        ge=0,
        le=600,
        description="On SIGTERM, seconds to let in-flight actions finish; what is left is then handed over "
        "within a few seconds, so keep a pod's `terminationGracePeriodSeconds` at least 10 s above it.",
    )

    # --- Access (simple cases; rules in BOT_CONFIG) -----------------------------------------------
    bot_allowed_users: str | None = Field(
        None, description="Comma-separated Slack user ids (`U…`/`W…`) allowed to act.", examples=["U012AB3CD"]
    )
    bot_allowed_usergroups: str | None = Field(
        None,
        description="Comma-separated Slack user-group ids (`S…`, not @handles) whose members may act.",
        examples=["S0123RELEASE"],
    )
    bot_allowed_channels: str | None = Field(
        None,
        description="Comma-separated channel ids (`C…`/`G…`/`D…`) where actions are allowed.",
        examples=["C012AB3CD"],
    )
    bot_allowed_teams: str | None = Field(
        None,
        description="Comma-separated Slack team ids (`T…`/`E…`) whose people may use the bot at all; list "
        "your own too. Unset: only the bot's own workspace, so Slack Connect guests are refused.",
        examples=["T0OURS,T0PARTNER"],
    )

    # --- Failure alerts (watcher) --------------------------------------------------------------
    bot_alert_channel: str | None = Field(
        None,
        description="Channel for failure alerts when no route or subscription matches: an id, or a name "
        "resolved to its id at start-up (an unknown name stops start-up).",
        examples=["C0123ABCD", "#ci-alerts"],
    )
    bot_watch: bool | None = Field(
        None,
        description="The failure watcher. Unset: on when `BOT_ALERT_CHANNEL` or a route can alert, or "
        "when Slack is configured (channels may subscribe).",
    )
    bot_mention_author: bool = Field(
        False,
        description="Mention the person who pushed in each alert: the `people:` map of `BOT_CONFIG`, then "
        "Slack's `users.lookupByEmail` (scope `users:read.email`); nobody found means no mention.",
    )
    bot_repeat_window_hours: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        description="Another failure of the same pipeline on the same branch within this many hours of its "
        "unresolved alert goes in that alert's thread; `0`: every failure is a new alert.",
    )
    bot_digest_threshold: int = Field(
        5,
        ge=0,
        le=1000,
        description="More failures than this due for one channel within `BOT_DIGEST_WINDOW_SECONDS` (its "
        "alerts in that window included) are listed in one digest message; `0`: never.",
    )
    bot_digest_window_seconds: float = Field(
        120.0, ge=1, le=3600, description="The window of `BOT_DIGEST_THRESHOLD`, in seconds."
    )
    bot_watch_interval: float = Field(30.0, ge=1, le=3600, description="Seconds between polls for failed events.")
    bot_watch_lookback: float = Field(
        900.0,
        ge=0,
        le=30 * 86_400,
        description="On a first start (and for a kind first polled later), alert only on failures newer "
        "than this many seconds.",
    )
    bot_webhook_token: SecretStr | None = Field(
        None,
        description="Token of `POST /hooks/codestream` (header `X-Codestream-Bot-Token`), which wakes the "
        "watcher at once. Unset or empty: the endpoint is closed.",
    )
    bot_watch_page_size: int = Field(50, ge=1, le=500, description="Events per list request.")
    bot_undeliverable_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        description="How long an alert Slack refuses for good (bot not in the channel…) is kept and retried.",
    )
    bot_approvals: bool | None = Field(
        None,
        description="The approvals watcher (Code Stream approvals posted where routing sends kind "
        "`approval`). Unset: on whenever the failure watcher is on.",
    )
    bot_approvals_interval: float = Field(
        30.0, ge=1, le=3600, description="Seconds between polls for pending approvals."
    )
    bot_approvals_listed_only: bool = Field(
        True,
        description="Only people an approval lists may decide it: their Slack e-mail among its `approvers`, "
        "or membership of a Slack group `approver_groups` maps one of its groups to. `false`: the access "
        "action `approve` alone decides.",
    )

    bot_webhook_warn_days: float = Field(
        80.0, ge=0, le=3650, description="Flag a git webhook not saved this many days (token may expire). `0`: never."
    )

    # --- Follow-through ------------------------------------------------------------------------
    bot_follow_max_hours: float = Field(
        6.0, gt=0, le=7 * 24, description="Stop following an execution after this many hours."
    )
    bot_follow_poll_budget: float = Field(
        2.0, gt=0, le=100, description="Execution status reads per second, across all followed executions."
    )
    bot_follow_lease_seconds: float = Field(
        30.0,
        ge=1,
        le=600,
        description="How long a dead replica's follow-up lease blocks the others (renewed every third of it).",
    )

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
        if CHANNEL_ID.fullmatch(value) or checks.CHANNEL_NAME.fullmatch(value):
            return value  # a name is resolved to its id at start-up
        raise ValueError("must be a channel id such as C012AB3CD or a channel name such as #ci-alerts")

    @field_validator("bot_allowed_users")
    @classmethod
    def _check_users(cls, value: str | None) -> str | None:
        return checks.id_list(value, ("U", "W"), "Slack member ids such as U012AB3CD (profile > ⋮ > Copy member ID)")

    @field_validator("bot_allowed_usergroups")
    @classmethod
    def _check_usergroups(cls, value: str | None) -> str | None:
        return checks.id_list(value, ("S",), "Slack user-group ids such as S0123RELEASE (not @handles)")

    @field_validator("bot_allowed_channels")
    @classmethod
    def _check_channels(cls, value: str | None) -> str | None:
        return checks.id_list(value, ("C", "G", "D"), "channel ids such as C012AB3CD (channel details > bottom)")

    @field_validator("bot_allowed_teams")
    @classmethod
    def _check_teams(cls, value: str | None) -> str | None:
        return checks.id_list(value, ("T", "E"), "Slack team ids such as T012AB3CD")

    @field_validator("codestream_url")
    @classmethod
    def _check_codestream_url(cls, value: str | None) -> str | None:
        return checks.http_url(value, name="vra") if value else None

    @field_validator("codestream_csp_url")
    @classmethod
    def _check_csp_url(cls, value: str) -> str:
        return checks.http_url(value, name="console.cloud")

    @field_validator("slack_api_url")
    @classmethod
    def _check_slack_api_url(cls, value: str) -> str:
        value = checks.http_url(value, name="slack")
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
        return checks.database_url(value)

    # --- Derived checks: what a feature needs ------------------------------------------------

    def codestream_problems(self) -> list[str]:
        """What is missing to talk to Code Stream (empty when ready)."""
        auth, refresh, token = self.codestream_auth, self.codestream_refresh_token, self.codestream_token
        return checks.codestream_problems(self.codestream_url, auth, refresh, token)

    def slack_problems(self, *, socket_mode: bool) -> list[str]:
        """What is missing to talk to Slack in this mode (empty when ready)."""
        return checks.slack_problems(self.slack_bot_token, self.slack_app_token, self.slack_signing_secret, socket_mode)

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
    return values + checks.url_passwords(settings.bot_database_url, settings.codestream_url or "")


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
        raise ConfigError([checks.describe_error(dict(e)) for e in exc.errors()]) from None


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
