"""Where the deployment artefacts are, and what tests/deploy reads them with: the Dockerfile
parsed into stages and instructions, docs/OPERATING.md's configuration reference, and the names
of the settings the bot reads."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from bot.app.setting_checks import SECRET_FIELDS
from bot.app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
CHART = ROOT / "deploy" / "helm" / "codestream-bot"
TEMPLATES = CHART / "templates"
OPERATING = ROOT / "docs" / "OPERATING.md"

UID = 10001
SETTINGS_ENV = frozenset(name.upper() for name in Settings.model_fields)
SECRET_ENV = frozenset(name.upper() for name in SECRET_FIELDS)
ENV_NAME = re.compile(r"\b(?:CODESTREAM|SLACK|BOT)_[A-Z0-9_]+\b")


def _tool(name: str) -> str | None:
    """A command on PATH, or installed next to this interpreter (a venv's bin/)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None)


def documented_variables() -> set[str]:
    """The variables of docs/OPERATING.md's configuration reference (generated from Settings)."""
    section = OPERATING.read_text(encoding="utf-8").split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


# --- Dockerfile ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.name or self.base}, found {len(found)}"
        return found[0]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, even inside a continuation
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        buffer += stripped
        keyword, _, rest = buffer.partition(" ")
        instructions.append(Instruction(keyword.upper(), rest.strip(), start))
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a line continuation"
    return instructions


def dockerfile_stages() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults, and the stages with ${ARG} resolved in their FROM."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.value.partition("=")
            global_args[name] = default.strip('"')
        elif instruction.keyword == "FROM":
            words = instruction.value.split()
            assert not [w for w in words if w.startswith("--platform")], "FROM --platform pins one architecture"
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m.group(1) or m.group(2)], words[0])
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, stage_name))
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return global_args, stages


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.value)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), instruction
    return cast(list[str], value)


def key_values(instruction: Instruction) -> dict[str, str]:
    """ENV / LABEL in their key=value form (the legacy `ENV key value` form is refused)."""
    pairs: dict[str, str] = {}
    for token in shlex.split(instruction.value):
        key, sep, value = token.partition("=")
        assert sep, f"line {instruction.line}: use {instruction.keyword} key=value (got {token!r})"
        pairs[key] = value
    return pairs


def final_stage() -> Stage:
    return dockerfile_stages()[1][-1]


def final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final_stage().all("ENV"):
        env.update(key_values(instruction))
    return env


def healthcheck_command() -> list[str]:
    value = final_stage().one("HEALTHCHECK").value
    options, sep, command = value.partition("CMD ")
    assert sep and command.startswith("["), "HEALTHCHECK must use CMD in exec form (no shell needed)"
    for option in options.split():
        assert re.fullmatch(r"--(interval|timeout|start-period|start-interval|retries)=\w+", option), option
    return exec_form(Instruction("CMD", command, 0))
