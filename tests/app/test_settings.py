"""Configuration: names are the interface; problems are reported one per variable, never
with a secret's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.settings import load_settings
from bot.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.codestream_auth == "vra"
    assert settings.codestream_api_version == "2019-10-17"
    assert settings.codestream_verify_tls is True
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.bot_database_url == "sqlite+aiosqlite:///./codestream-bot.db"
    assert settings.codestream_csp_url == "https://console.cloud.vmware.com"
    assert settings.bot_dedupe_seconds == 300  # Slack's whole signature window
    assert settings.bot_reconcile_seconds == 300
    assert settings.bot_audit_retention_days == 0


def test_every_documented_variable_is_read(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("pem")
    config = tmp_path / "bot.yaml"
    config.write_text("{}")
    settings = load_settings(
        {
            "CODESTREAM_URL": "https://vra.example.com/",
            "CODESTREAM_AUTH": "csp",
            "CODESTREAM_REFRESH_TOKEN": "r" * 20,
            "CODESTREAM_TOKEN": "t" * 20,
            "CODESTREAM_CSP_URL": "https://csp.example.com",
            "CODESTREAM_API_VERSION": "2020-01-01",
            "CODESTREAM_CA_BUNDLE": str(bundle),
            "CODESTREAM_VERIFY_TLS": "false",
            "CODESTREAM_TIMEOUT": "12.5",
            "CODESTREAM_UI_URL": "{base}/ui/executions/{id}",
            "SLACK_BOT_TOKEN": "xoxb-1-2-3",
            "SLACK_SIGNING_SECRET": "s" * 32,
            "SLACK_APP_TOKEN": "xapp-1-2",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "BOT_DATABASE_URL": "postgresql://u@db/codestream",
            "BOT_CONFIG": str(config),
            "BOT_LOG_LEVEL": "DEBUG",
            "BOT_LOG_FORMAT": "text",
        }
    )
    assert settings.codestream_url == "https://vra.example.com"
    assert settings.codestream_auth == "csp"
    assert settings.codestream_verify_tls is False
    assert settings.codestream_timeout == 12.5
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.bot_database_url == "postgresql+asyncpg://u@db/codestream"
    assert settings.execution_ui_url("abc") == "https://vra.example.com/ui/executions/abc"
    assert settings.codestream_problems() == []
    assert settings.slack_problems(socket_mode=True) == []


def test_each_problem_is_one_line_naming_the_variable_and_no_secret_leaks() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "CODESTREAM_URL": "vra.example.com",
                "CODESTREAM_AUTH": "kerberos",
                "CODESTREAM_TIMEOUT": "-1",
                "CODESTREAM_UI_URL": "https://ui/{execution}",
                "CODESTREAM_CA_BUNDLE": "/nonexistent/ca.pem",
                "CODESTREAM_REFRESH_TOKEN": "super-secret-refresh-value",
                "BOT_DATABASE_URL": "mysql://x",
            }
        )
    problems = caught.value.problems
    prefixes = sorted(p.split(":", 1)[0] for p in problems)
    assert prefixes == sorted(
        [
            "CODESTREAM_URL",
            "CODESTREAM_AUTH",
            "CODESTREAM_TIMEOUT",
            "CODESTREAM_UI_URL",
            "CODESTREAM_CA_BUNDLE",
            "BOT_DATABASE_URL",
        ]
    )
    text = str(caught.value)
    assert "super-secret-refresh-value" not in text
    assert "Traceback" not in text and "pydantic" not in text.lower()


def test_secret_values_are_never_echoed_even_when_invalid() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_BOT_TOKEN": ["xoxb-secret"]})  # type: ignore[dict-item]
    assert "xoxb-secret" not in str(caught.value)


def test_missing_pieces_name_the_variable_and_what_it_is() -> None:
    settings = load_settings({"CODESTREAM_AUTH": "token"})
    assert [p.split(":")[0] for p in settings.codestream_problems()] == ["CODESTREAM_URL", "CODESTREAM_TOKEN"]
    http = load_settings({"SLACK_BOT_TOKEN": "xoxp-user-token"}).slack_problems(socket_mode=False)
    assert [p.split(":")[0] for p in http] == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    socket = load_settings({"SLACK_BOT_TOKEN": "xoxb-1"}).slack_problems(socket_mode=True)
    assert [p.split(":")[0] for p in socket] == ["SLACK_APP_TOKEN"]


def test_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CODESTREAM_TIMEOUT=7\n")
    monkeypatch.setenv("CODESTREAM_URL", "https://from-env.example.com")
    settings = load_settings()
    assert settings.codestream_url == "https://from-env.example.com"
    assert settings.codestream_timeout == 7
