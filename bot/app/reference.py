"""The configuration reference, generated from the models that validate the configuration.

``codestream-bot config --markdown`` prints the environment variables' table (from
:class:`bot.app.settings.Settings`: each field's description, default and constraints), and
``codestream-bot config --json-schema`` the JSON Schema of the ``BOT_CONFIG`` file (from
:class:`bot.core.fileconfig.FileConfig` and the access rules' models). ``docs/OPERATING.md`` holds
the table and ``docs/bot-config.schema.json`` the schema; tests keep both equal to these.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Final, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import ConfigDict, Field, SecretStr
from pydantic.fields import FieldInfo

from bot.app.settings import Settings
from bot.core.access import AccessConfig
from bot.core.fileconfig import FileConfig

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

# The access rules' fields are described here, not in bot/core/access: the schema is their only
# reader, and the rules' validation stays where it is.
_RULE_FIELDS: Final = {
    "users": "Slack user ids (`U…`/`W…`) the rule names. A rule naming no user and no user group names everyone.",
    "usergroups": "Slack user-group ids (`S…`): their members are named by the rule (membership from "
    "`usergroups.users.list`, cached 5 minutes).",
    "channels": "Channel ids (`C…`/`G…`/`D…`) where the rule applies. Empty: every channel; a rule "
    "limited to channels does not apply outside any channel (the Home tab).",
    "actions": "What the rule allows. Without `actions`: `show`, `rerun` and `resume`; `mute`, `subscribe`, "
    "`cancel`, `pause` (which covers resuming an execution) and `approve` only when named.",
    "kinds": "Event kinds the rule covers (`git`, `gerrit`, `docker`). Empty: all.",
    "projects": "Code Stream projects (exact or glob). Empty: all.",
    "pipelines": "Pipelines (exact or glob). Empty: all.",
}
_RULE_ID_PATTERNS: Final = {
    "users": r"^\s*[UW][A-Z0-9]*\s*$",
    "usergroups": r"^\s*S[A-Z0-9]*\s*$",
    "channels": r"^\s*[CGD][A-Z0-9]*\s*$",
}


# --- the environment variables --------------------------------------------------------------------


def _variants(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of an annotation, and whether None is one of them."""
    members = list(get_args(annotation)) if get_origin(annotation) in (Union, types.UnionType) else [annotation]
    return [m for m in members if m is not type(None)], type(None) in members


def _bounds(field: FieldInfo, whole: bool) -> str:
    """``number from 1 to 3600``, ``number above 0, at most 600``..."""
    low = high = ""
    for item in field.metadata:
        if isinstance(item, Ge):
            low = f"from {_number(item.ge)}"
        elif isinstance(item, Gt):
            low = f"above {_number(item.gt)}"
        elif isinstance(item, Le):
            high = f"at most {_number(item.le)}"
        elif isinstance(item, Lt):
            high = f"below {_number(item.lt)}"
    kind = "whole number" if whole else "number"
    if low.startswith("from") and high.startswith("at most"):
        return f"{kind} {low} to {high.removeprefix('at most ')}"
    return ", ".join(p for p in (f"{kind} {low}".strip(), high) if p)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def _values(field: FieldInfo) -> str:
    """What the variable accepts, from its type and constraints (and its examples)."""
    members, _ = _variants(field.annotation)
    (kind,) = members
    if get_origin(kind) is Literal:
        text = ", ".join(f"`{v}`" for v in get_args(kind))
    elif kind is bool:
        text = "`true`, `false`"
    elif kind is SecretStr:
        text = "secret (never shown)"
    elif kind is Path:
        text = "file path"
    elif kind in (int, float):
        text = _bounds(field, whole=kind is int)
    else:
        patterns = [getattr(m, "pattern", None) for m in field.metadata]
        text = next((f"text matching `{p}`" for p in patterns if p), "text")
    if field.examples:
        text += "; e.g. " + ", ".join(f"`{e}`" for e in field.examples)
    return text


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_markdown() -> str:
    """The environment variables' reference: one table row per setting, in the model's order."""
    lines = ["| variable | default | values | what it does |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise ValueError(f"setting {name} has no description")
        row = (f"`{name.upper()}`", _default(field), _values(field), field.description)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


# --- the BOT_CONFIG file --------------------------------------------------------------------------


class _Document(FileConfig):
    """The `BOT_CONFIG` file of codestream-bot: alert routes, access rules, people and approver groups."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="BOT_CONFIG")

    # FileConfig keeps ``access`` opaque (bot.core.access validates it); the schema spells it out.
    access: AccessConfig | None = Field(None, description=FileConfig.model_fields["access"].description)


def bot_config_schema() -> dict[str, Any]:
    """The JSON Schema of the ``BOT_CONFIG`` file (YAML is checked against it as JSON data)."""
    schema = _Document.model_json_schema()
    rule = schema["$defs"]["Rule"]
    for name, description in _RULE_FIELDS.items():
        rule["properties"][name]["description"] = description
    for name, pattern in _RULE_ID_PATTERNS.items():
        rule["properties"][name]["items"]["pattern"] = pattern
    rule["description"] = "One rule: every condition that is set must hold. Anything no rule allows is denied."
    access = schema["$defs"]["AccessConfig"]
    access["description"] = "The access policy; with no rule at all (nor `BOT_ALLOWED_*`), everyone may act."
    access["properties"]["rules"]["description"] = (
        "The rules. `check` and `whoami` number them from 0, the `BOT_ALLOWED_*` rule (when set) first."
    )
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def bot_config_schema_json() -> str:
    """The schema as ``docs/bot-config.schema.json`` holds it."""
    return json.dumps(bot_config_schema(), indent=2, ensure_ascii=False) + "\n"
