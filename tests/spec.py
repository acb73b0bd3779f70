"""The official Code Stream API spec (Swagger 2.0), for contract tests.

``check_request`` validates a request the client sent against the documented operation: path
template, method, declared query parameters, required parameters, and declared types.
``example_of`` builds a payload from the spec's per-property examples, as a server following the
documentation literally would send it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

# A copy of the official spec (shared/reference/codestream-api), kept with the tests so they run
# from any checkout.
SPEC_FILE = Path(__file__).resolve().parent / "data" / "codestream-api-2019-10-17.swagger.json"


@cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_FILE.read_text())
    return data


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^{pattern}$")


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    # Prefer literal paths over templated ones (/git-events before /git-events/{id}).
    paths = sorted(spec()["paths"].items(), key=lambda item: item[0].count("{"))
    for template, ops in paths:
        if _template_regex(template).match(path):
            op = ops.get(method.lower())
            return (template, op) if isinstance(op, dict) else None
    return None


def check_request(method: str, path: str, query: dict[str, str], has_body: bool = False) -> list[str]:
    """Problems with the request according to the spec (empty list: it conforms)."""
    found = find_operation(method, path)
    if found is None:
        return [f"{method} {path}: no such operation in the spec"]
    template, op = found
    problems: list[str] = []
    params = {p["name"]: p for p in op.get("parameters", []) if isinstance(p, dict)}
    for name, value in query.items():
        param = params.get(name)
        if param is None or param.get("in") != "query":
            problems.append(f"{method} {template}: undocumented query parameter {name!r}")
            continue
        if param.get("type") == "integer" and not value.lstrip("-").isdigit():
            problems.append(f"{method} {template}: {name} should be an integer, got {value!r}")
    for name, param in params.items():
        if param.get("in") == "query" and param.get("required") and name not in query:
            problems.append(f"{method} {template}: missing required query parameter {name!r}")
        if param.get("in") == "body" and param.get("required") and not has_body:
            problems.append(f"{method} {template}: missing required body")
    return problems


def example_of(definition: str, depth: int = 0) -> dict[str, Any]:
    """An object made of the spec's per-property examples (nested refs to a small depth)."""
    schema = spec()["definitions"][definition]
    result: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if "example" in prop:
            result[name] = prop["example"]
        elif "$ref" in prop and depth < 2:
            result[name] = example_of(prop["$ref"].rsplit("/", 1)[-1], depth + 1)
    return result
