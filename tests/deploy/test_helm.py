"""The Helm chart, checked against the code (``bot.app.settings.Settings``, the CLI, pyproject.toml,
docs/OPERATING.md and the Dockerfile) so the chart cannot drift from what the bot reads.

Nothing here needs a cluster. The static tests parse the chart's files. The chart is also rendered
with Helm when a renderer is available — the ``helm`` binary on PATH, else the ``helm-python-sdk``
package (Helm's Go SDK in a wheel) — and those tests are skipped, with the reason shown, otherwise.
``kubernetes-validate`` checks the rendered objects against the Kubernetes schemas when installed.
``BOT_TEST_HELM=cli`` or ``=sdk`` picks the renderer when both are present.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

import pytest
import yaml

from bot.app.settings import Settings, load_settings
from bot.cli.main import build_parser
from bot.core.fileconfig import parse_file_config
from tests.deploy.artefacts import (
    CHART,
    ENV_NAME,
    ROOT,
    SECRET_ENV,
    SETTINGS_ENV,
    TEMPLATES,
    UID,
    _tool,
    documented_variables,
    final_env,
    final_stage,
)

pytestmark = pytest.mark.slow  # real subprocesses or tools: `pytest -m "not slow"` skips it

# BOT_DATABASE_URL is not a SecretStr in Settings, but a PostgreSQL URL may carry a password.
CHART_SECRET_ENV = SECRET_ENV | {"BOT_DATABASE_URL"}


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
    documented = documented_variables()
    sources = [p.read_text(encoding="utf-8") for p in TEMPLATES.iterdir()] + [(CHART / "values.yaml").read_text()]
    named = {m.group(0) for text in sources for m in ENV_NAME.finditer(text)}
    assert named, "the chart names no variables?"
    unknown = {n for n in named if n not in SETTINGS_ENV}
    assert not unknown, f"not read by bot.app.settings.Settings: {sorted(unknown)}"
    undocumented = {n for n in named if n not in documented}
    assert not undocumented, f"not in docs/OPERATING.md's configuration reference: {sorted(undocumented)}"
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
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)

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

    # Every variable is one the bot reads and docs/OPERATING.md documents, or one the image sets for the
    # runtime itself (MALLOC_ARENA_MAX), with the image's value; tokens only ever come from a Secret.
    documented = documented_variables()
    image_env = final_env()
    for name, entry in r.env.items():
        if name in image_env and not ENV_NAME.fullmatch(name):
            assert entry == {"name": name, "value": image_env[name]}, name
            continue
        assert name in SETTINGS_ENV and name in documented, name
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
    assert r.env["MALLOC_ARENA_MAX"]["value"] == final_env()["MALLOC_ARENA_MAX"], "as in the image"
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


@pytest.mark.parametrize("grace", [None, "5"])
def test_the_pods_termination_grace_leaves_the_bot_its_shutdown_grace_and_hand_over(
    helm: Renderer, grace: str | None
) -> None:
    """On SIGTERM the bot works for BOT_SHUTDOWN_GRACE, then hands what is left over within
    SHUTDOWN_MARGIN_SECONDS: Kubernetes must not SIGKILL it before."""
    from bot.app.serve import SHUTDOWN_MARGIN_SECONDS

    r = render(helm, {} if grace is None else {"env": {"BOT_SHUTDOWN_GRACE": grace}})
    bot_grace = float(r.env["BOT_SHUTDOWN_GRACE"]["value"]) if "BOT_SHUTDOWN_GRACE" in r.env else None
    if bot_grace is None:
        bot_grace = load_settings({}).bot_shutdown_grace
    assert r.pod["terminationGracePeriodSeconds"] >= bot_grace + SHUTDOWN_MARGIN_SECONDS
