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
#: The later spec (vRA 8.10.1): new requests are checked against both.
SPEC_FILE_8_10 = Path(__file__).resolve().parent / "data" / "codestream-api-vra-8.10.1.swagger.json"
SPEC_FILES = (SPEC_FILE, SPEC_FILE_8_10)


@cache
def spec(path: Path = SPEC_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^{pattern}$")


def find_operation(method: str, path: str, spec_file: Path = SPEC_FILE) -> tuple[str, dict[str, Any]] | None:
    # Prefer literal paths over templated ones (/git-events before /git-events/{id}).
    paths = sorted(spec(spec_file)["paths"].items(), key=lambda item: item[0].count("{"))
    for template, ops in paths:
        if _template_regex(template).match(path):
            op = ops.get(method.lower())
            return (template, op) if isinstance(op, dict) else None
    return None


def check_request(
    method: str, path: str, query: dict[str, str], has_body: bool = False, spec_file: Path = SPEC_FILE
) -> list[str]:
    """Problems with the request according to the spec (empty list: it conforms)."""
    found = find_operation(method, path, spec_file)
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


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def check_body(method: str, path: str, body: Any, spec_file: Path = SPEC_FILE) -> list[str]:
    """Problems with a JSON request body according to the operation's body schema: every
    property declared, of its declared type, within its enum (empty list: it conforms)."""
    found = find_operation(method, path, spec_file)
    if found is None:
        return [f"{method} {path}: no such operation in {spec_file.name}"]
    template, op = found
    params = [p for p in op.get("parameters", []) if isinstance(p, dict) and p.get("in") == "body"]
    if not params:
        return [f"{method} {template}: takes no body in {spec_file.name}"]
    ref = params[0].get("schema", {}).get("$ref", "")
    schema = spec(spec_file)["definitions"].get(ref.rsplit("/", 1)[-1], {})
    if not isinstance(body, dict):
        return [f"{method} {template}: body should be an object"]
    problems: list[str] = []
    properties = schema.get("properties", {})
    for name, value in body.items():
        prop = properties.get(name)
        if prop is None:
            problems.append(f"{method} {template}: undocumented body property {name!r} ({spec_file.name})")
            continue
        expected = _JSON_TYPES.get(str(prop.get("type")))
        if expected is not None and not isinstance(value, expected):
            problems.append(f"{method} {template}: {name} should be {prop.get('type')}, got {value!r}")
        if "enum" in prop and value not in prop["enum"]:
            problems.append(f"{method} {template}: {name} should be one of {prop['enum']}, got {value!r}")
    for name in schema.get("required", []):
        if name not in body:
            problems.append(f"{method} {template}: missing required body property {name!r}")
    return problems
