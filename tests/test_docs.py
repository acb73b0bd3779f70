"""The documentation holds together: every relative link in README.md and docs/*.md reaches a file
(and, with ``#…``, a heading of it, by GitHub's anchor rules); every ``codestream-bot`` command in
a ``sh`` block parses with the real CLI; every ``python -m`` module in one exists; the metrics named
are the ones the bot defines."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = ROOT / "README.md"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
SEPARATORS = frozenset({"&&", "||", "|", ";", ">", ">>", "2>", "<", "&"})


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block, also one indented in a list item."""
    return [(m["info"].strip(), textwrap.dedent(m["body"])) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text outside code: fenced blocks and inline code spans removed."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower-cased, without punctuation (but
    ``-`` and ``_``), spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")  # HTML tags, code marks
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_ ")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> Iterator[str]:
    for match in LINK.finditer(prose(path.read_text(encoding="utf-8"))):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # https:, mailto: ... : not a file of this repository
        yield target


def test_the_slugs_follow_githubs_rules() -> None:
    assert slug("Who may do what: `whoami`") == "who-may-do-what-whoami"
    assert slug("The `BOT_CONFIG` file") == "the-bot_config-file"
    assert slug('"Already in hand"') == "already-in-hand"
    assert slug("Cancel, pause and resume an execution") == "cancel-pause-and-resume-an-execution"
    assert slug("1. Ack overhead — `python -m bench.ack`") == "1-ack-overhead--python--m-benchack"


def broken_links(page: Path) -> list[str]:
    broken: list[str] = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.is_file():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


def test_the_link_check_catches_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Title\n\n## A `code` heading\n\n## Title\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md) [ok](other.md#a-code-heading) [ok](other.md#title-1) [ok](#here) [web](https://x.y/z)\n"
        "`[not a link](nowhere.md)`\n```\n[nor this](nowhere.md)\n```\n# Here\n"
        "[bad](missing.md) [bad](other.md#nope) [bad](#there) [bad](other.md#title-2)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nope: no heading #nope in other.md",
        "#there: no heading #there in page.md",
        "other.md#title-2: no heading #title-2 in other.md",
    ]


def shell_commands(text: str) -> Iterator[list[str]]:
    """The simple commands of every ``sh`` block: continuations joined, comments dropped, split at
    ``&&``, pipes, redirections and ``;``."""
    for info, body in fenced_blocks(text):
        if info not in ("sh", "shell", "bash", "console"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            words: list[str] = []
            for token in shlex.split(line, comments=True):
                if token in SEPARATORS:
                    if words:
                        yield words
                    words = []
                else:
                    words.append(token)
            if words:
                yield words


def cli_arguments(words: list[str]) -> list[str] | None:
    """The arguments a simple command gives ``codestream-bot``, or None when it does not run it:
    directly (after ``VAR=value`` assignments), inside ``kubectl exec … --`` or ``docker exec
    <container>``, or as ``docker run … <image> <args>`` (the image's entry point)."""
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    if not words:
        return None
    if words[0] == "codestream-bot":
        return words[1:]
    if words[0] == "kubectl" and "--" in words:
        return cli_arguments(words[words.index("--") + 1 :])
    if words[:2] == ["docker", "exec"]:
        rest = [w for w in words[2:] if not w.startswith("-")]
        return cli_arguments(rest[1:])
    if words[:2] == ["docker", "run"]:
        image = next((i for i, w in enumerate(words) if re.search(r"(^|/)codestream-bot:[\w.-]+$", w)), None)
        if image is not None:
            return words[image + 1 :] or ["serve"]  # CMD ["serve"]
    return None


def cli_invocations(text: str) -> Iterator[list[str]]:
    """The arguments of every ``codestream-bot`` command in the ``sh`` blocks."""
    for words in shell_commands(text):
        argv = cli_arguments(words)
        if argv is not None:
            yield argv


def _parses(argv: list[str]) -> tuple[int | str | None, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exited:
            return exited.code, err.getvalue()
    return None, ""


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cli_command_shown_exists(page: Path) -> None:
    wrong: list[str] = []
    for argv in cli_invocations(page.read_text(encoding="utf-8")):
        code, err = _parses(argv)
        if code is not None:
            wrong.append(f"codestream-bot {shlex.join(argv)}: {err.strip().splitlines()[-1] if err else code}")
        elif argv and _parses([argv[0], "--help"])[0] != 0:
            wrong.append(f"codestream-bot {argv[0]} --help does not exit 0")
    assert not wrong, "\n".join(wrong)


def test_the_readme_shows_the_commands_it_should() -> None:
    shown = {argv[0] for argv in cli_invocations(README.read_text(encoding="utf-8")) if argv}
    assert {"demo", "check", "serve"} <= shown
    commands = [" ".join(words) for words in shell_commands(README.read_text(encoding="utf-8"))]
    assert "pip install -e ." in commands and "pytest" in commands and "pytest -m not slow" in commands


def test_the_cli_check_catches_a_wrong_command() -> None:
    text = "```sh\ncodestream-bot frobnicate --now\nCODESTREAM_URL=x codestream-bot serve --mode ftp\n```\n"
    failures = [argv for argv in cli_invocations(text) if _parses(argv)[0] is not None]
    assert failures == [["frobnicate", "--now"], ["serve", "--mode", "ftp"]]
    assert isinstance(build_parser(), argparse.ArgumentParser)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_module_shown_exists(page: Path) -> None:
    for words in shell_commands(page.read_text(encoding="utf-8")):
        if len(words) > 2 and words[0] in ("python", "python3") and words[1] == "-m":
            assert importlib.util.find_spec(words[2]) is not None, f"{page.name}: python -m {words[2]}"


def _defined_metrics() -> set[str]:
    source = (ROOT / "bot" / "core" / "metrics.py").read_text(encoding="utf-8")
    return {f"codestream_bot_{name}" for name in re.findall(r'f"\{PREFIX\}_(\w+)"', source)}


def test_the_metrics_named_are_the_ones_defined() -> None:
    defined = _defined_metrics()
    assert len(defined) >= 10
    for page in PAGES:
        named = set(re.findall(r"\bcodestream_bot_\w+", page.read_text(encoding="utf-8")))
        assert named <= defined, f"{page.name}: {sorted(named - defined)}"
    operating = (ROOT / "docs" / "OPERATING.md").read_text(encoding="utf-8")
    assert not {m for m in defined if f"`{m}" not in operating}, "every metric is listed in docs/OPERATING.md"
