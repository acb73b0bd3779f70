"""Layer rules that import-linter cannot say exactly (its contracts in pyproject.toml keep the
layers and forbid cycles): nothing in ``bot.slack`` holds the store or the Code Stream client.
Slack code reads and acts through the core's functions and ports; it may import the records and
value types it draws (``ActionRecord``, ``Event``, ``Execution``...), never the ``Store``, the
``CodeStreamClient`` or the modules that make them, whatever module re-exports them, and it never
reaches through another object to one (``x.store``, ``x.client``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SLACK = Path(__file__).resolve().parents[1] / "bot" / "slack"

FORBIDDEN_NAMES = frozenset({"Store", "open_store", "CodeStreamClient"})
FORBIDDEN_MODULES = frozenset(
    {"bot.store.store", "bot.store.engine", "bot.codestream.client", "bot.codestream.factory"}
)
FORBIDDEN_ATTRIBUTES = frozenset({"store", "client"})  # reaching through a core object to them


def _package(path: Path) -> str:
    """The package relative imports start from (a module's, or an ``__init__``'s own)."""
    return ".".join(path.relative_to(SLACK.parents[1]).parts[:-1])


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _string_annotations(tree: ast.AST) -> Iterator[ast.AST]:
    """Annotations written as strings, parsed (``x: "Store"``)."""
    for node in ast.walk(tree):
        annotations: list[ast.expr | None] = []
        if isinstance(node, ast.AnnAssign | ast.arg):
            annotations.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotations.append(node.returns)
        for annotation in annotations:
            for part in ast.walk(annotation) if annotation is not None else ():
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    try:
                        yield ast.parse(part.value, mode="eval")
                    except SyntaxError:
                        continue


def violations(source: str, package: str = "bot.slack") -> list[str]:
    """What in ``source`` holds, names or reaches the store or the Code Stream client."""
    tree = ast.parse(source)
    found: list[str] = []
    for root in [tree, *_string_annotations(tree)]:
        for node in ast.walk(root):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Import):
                found += [f"{line}: import {a.name}" for a in node.names if a.name in FORBIDDEN_MODULES]
            elif isinstance(node, ast.ImportFrom):
                module = _absolute(node, package)
                if module in FORBIDDEN_MODULES:
                    found.append(f"{line}: from {module} import ...")
                for alias in node.names:
                    if alias.name in FORBIDDEN_NAMES or f"{module}.{alias.name}" in FORBIDDEN_MODULES:
                        found.append(f"{line}: from {module} import {alias.name}")
            elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
                found.append(f"{line}: {node.id}")
            elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES | FORBIDDEN_ATTRIBUTES:
                found.append(f"{line}: .{node.attr}")
            elif isinstance(node, ast.Constant) and node.value in FORBIDDEN_MODULES:
                found.append(f"{line}: {node.value!r}")  # importlib.import_module("bot.store.store")
    return found


def test_nothing_in_bot_slack_holds_the_store_or_the_code_stream_client() -> None:
    files = sorted(SLACK.rglob("*.py"))
    assert len(files) > 40  # the whole package is read
    found = {
        str(path.relative_to(SLACK.parents[1])): v
        for path in files
        if (v := violations(path.read_text(encoding="utf-8"), _package(path)))
    }
    assert found == {}


@pytest.mark.parametrize(
    "source",
    [
        "from bot.store import Store",
        "from bot.store import open_store",
        "from bot.codestream import CodeStreamClient",
        "from bot.core.perform import Store",  # re-exported through the core: the same object
        "from bot.store.store import Clock",
        "from bot.codestream.factory import create_client",
        "from bot.codestream import client",
        "import bot.store.engine",
        "import bot.store\nx: bot.store.Store",
        "def f(s: 'Store') -> None: ...",
        "def f() -> 'CodeStreamClient | None': ...",
        "async def f(actions): await actions.store.claim('k', 'h', 1.0)",
        "def f(x): return x.client.get_event('git', 'e')",
        "import importlib\nimportlib.import_module('bot.codestream.client')",
        "from ..store import Store",
    ],
)
def test_the_rule_sees_each_way_of_holding_them(source: str) -> None:
    assert violations(source, "bot.slack.handlers")


@pytest.mark.parametrize(
    "source",
    [
        "from bot.store import ActionRecord, DigestRow",  # records, to draw them
        "from bot.codestream.models import Event, Execution",
        "from bot.codestream.errors import CodeStreamError",
        "from bot.core.muting import Muting",  # the core's functions over them
        "app = AsyncApp(client=web)",  # a keyword, not an attribute
    ],
)
def test_the_rule_leaves_records_and_core_functions_alone(source: str) -> None:
    assert violations(source) == []
