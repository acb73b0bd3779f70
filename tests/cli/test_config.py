"""``codestream-bot config``: the configuration reference is generated from the models, and the
copies in the repository (docs/OPERATING.md's table, docs/bot-config.schema.json) are what it
generates. After an intended change: ``UPDATE_DOCS=1 pytest tests/cli/test_config.py``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.app.reference import bot_config_schema, bot_config_schema_json, settings_markdown
from bot.app.settings import Settings
from bot.cli.main import main
from bot.core.access import parse_access_config
from bot.core.fileconfig import FileConfig, parse_file_config
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
OPERATING = ROOT / "docs" / "OPERATING.md"
SCHEMA = ROOT / "docs" / "bot-config.schema.json"
BEGIN = "<!-- BEGIN GENERATED: codestream-bot config --markdown -->\n"
END = "<!-- END GENERATED: codestream-bot config --markdown -->"
UPDATE = os.environ.get("UPDATE_DOCS") == "1"


def generated_block(text: str) -> str:
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/OPERATING.md must hold the markers once"
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


def test_operating_md_holds_the_generated_settings_table() -> None:
    text = OPERATING.read_text(encoding="utf-8")
    table = settings_markdown()
    if UPDATE:
        before, rest = text.split(BEGIN, 1)
        OPERATING.write_text(before + BEGIN + table + END + rest.split(END, 1)[1], encoding="utf-8")
        text = OPERATING.read_text(encoding="utf-8")
    assert generated_block(text) == table, "run UPDATE_DOCS=1 pytest tests/cli/test_config.py"


def test_schema_file_is_the_generated_one() -> None:
    generated = bot_config_schema_json()
    if UPDATE:
        SCHEMA.write_text(generated, encoding="utf-8")
    assert SCHEMA.read_text(encoding="utf-8") == generated, "run UPDATE_DOCS=1 pytest tests/cli/test_config.py"


def test_the_command_prints_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--markdown"]) == 0
    assert capsys.readouterr().out == settings_markdown()
    assert main(["config", "--json-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == bot_config_schema()


def test_the_command_needs_one_of_its_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["config"])
    assert exited.value.code == 2
    assert "--markdown" in capsys.readouterr().err


def test_every_setting_is_one_row_with_its_description_and_default() -> None:
    rows = [line for line in settings_markdown().splitlines()[2:] if line.startswith("| `")]
    assert len(rows) == len(Settings.model_fields)
    for row, (name, field) in zip(rows, Settings.model_fields.items(), strict=True):
        assert row.startswith(f"| `{name.upper()}` | "), row
        assert field.description and field.description.replace("|", "\\|") in row, name
    by_name = {row.split("`")[1]: row for row in rows}
    assert by_name["CODESTREAM_AUTH"].startswith("| `CODESTREAM_AUTH` | `vra` | `vra`, `csp`, `token` |")
    assert "| `BOT_WATCH_INTERVAL` | `30` | number from 1 to 3600 |" in by_name["BOT_WATCH_INTERVAL"]
    assert "| `SLACK_BOT_TOKEN` | unset | secret (never shown) |" in by_name["SLACK_BOT_TOKEN"]
    assert "| whole number from 0 to 65,535 |" in by_name["BOT_HEALTH_PORT"]


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(f"BOT_CONFIG.{name}", value) for name, value in schema["properties"].items()]
    for model, definition in schema["$defs"].items():
        found += [(f"{model}.{name}", value) for name, value in definition.get("properties", {}).items()]
    return found


def test_every_key_of_the_file_is_described() -> None:
    schema = bot_config_schema()
    assert set(schema["properties"]) == set(FileConfig.model_fields)
    undescribed = [name for name, value in _properties(schema) if not value.get("description")]
    assert not undescribed, undescribed


def _bot_accepts(data: Any) -> bool:
    try:
        config = parse_file_config(yaml.safe_dump(data))
        parse_access_config(config.access)
    except ConfigError:
        return False
    return True


def _schema_accepts(data: Any) -> bool:
    return jsonschema.Draft202012Validator(bot_config_schema()).is_valid(data)


ACCEPTED: list[Any] = [
    {},
    {"routes": [{"match": {"project": "Payments", "branch": ["main", "release/*"]}, "channel": "C0PAYMENTS"}]},
    {"routes": [{"match": {"kind": "approval"}, "channel": "G0PRIVATE", "mention": "<!subteam^S0PAY|pay>"}]},
    {"routes": [{"match": {"kind": ["git", "docker"]}, "channel": "C0AB", "mention": "U0ALICE"}]},
    {"routes": [{"match": {"pipeline": "*-nightly"}, "drop": True}]},
    {"routes": [{"channel": "C0ALL", "drop": False, "mention": "<@U0ALICE>"}]},
    {"access": {"rules": [{"actions": ["show"]}, {"usergroups": ["S0RELEASE"], "actions": ["rerun", "approve"]}]}},
    {"access": {"rules": [{"users": ["U0A", "W0B"], "channels": ["C0A", "D0B"], "kinds": ["gerrit"]}]}},
    {"people": {"Alex Chen": "U0ALEXCHEN", "ci@example.com": "<@U0BOT>"}},
    {"approver_groups": {"release-managers": "S0RELEASE"}},
    {"people": None, "approver_groups": None, "access": None},
]
REFUSED: list[Any] = [
    {"routs": []},
    {"routes": [{"match": {"kind": "svn"}, "channel": "C0AB"}]},
    {"routes": [{"match": {"project": "Payments"}}]},
    {"routes": [{"channel": "C0AB", "drop": True}]},
    {"routes": [{"drop": True, "mention": "U0ALICE"}]},
    {"routes": [{"channel": "#ci-alerts"}]},
    {"routes": [{"channel": "C0AB", "mention": "@here"}]},
    {"routes": [{"channel": "C0AB", "mention": "<!channel>"}]},
    {"routes": [{"match": {"branch": 1.1}, "channel": "C0AB"}]},
    {"routes": [{"match": {"branch": []}, "channel": "C0AB"}]},
    {"routes": [{"match": {"colour": "red"}, "channel": "C0AB"}]},
    {"access": {"rules": [{"actions": ["deploy"]}]}},
    {"access": {"rules": [{"users": ["alice"]}]}},
    {"access": {"rules": [{"usergroups": ["@release"]}]}},
    {"access": {"rules": [{"kinds": ["approval"]}]}},
    {"access": {"roles": []}},
    {"people": {"Alex": "alex"}},
    {"approver_groups": {"release-managers": "@release"}},
]


@pytest.mark.parametrize("data", ACCEPTED)
def test_what_the_bot_accepts_the_schema_accepts(data: Any) -> None:
    assert _bot_accepts(data)
    assert _schema_accepts(data)


@pytest.mark.parametrize("data", REFUSED)
def test_what_the_bot_refuses_the_schema_refuses(data: Any) -> None:
    assert not _bot_accepts(data)
    assert not _schema_accepts(data)


def test_every_bot_config_example_in_the_docs_is_valid() -> None:
    """The YAML examples of BOT_CONFIG in the guides: the bot and the schema both take them."""
    keys = set(FileConfig.model_fields)
    checked = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"^```yaml\n(.*?)^```", page.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL):
            data = yaml.safe_load(block)
            if not isinstance(data, dict) or not set(data) <= keys:
                continue
            assert _bot_accepts(data), f"{page.name}: {block}"
            assert _schema_accepts(data), f"{page.name}: {block}"
            checked += 1
    assert checked >= 4
