"""What a pipeline run is given: the command's words and a workflow step's input lines, parsed,
and the inputs whose names look secret, masked wherever the bot shows, logs or records them
(Code Stream alone gets their values). Pure."""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.codestream.pipelines import Pipeline, PipelineInput
from bot.core.errors import BotError, UsageError

MASK: Final = "••••••"
_SECRET: Final = re.compile(r"pass(word|wd|phrase)?|pwd|token|secret|key|credential|private|auth", re.IGNORECASE)
# Curly double quotes quote; a curly apostrophe (don’t) stays a letter.
_SMART_QUOTES: Final = str.maketrans({"“": '"', "”": '"'})


def is_secret(name: str) -> bool:
    """Whether an input's name says it holds a secret (its value is never shown or recorded)."""
    return bool(_SECRET.search(name))


def masked(inputs: Mapping[str, Any]) -> dict[str, str]:
    """``inputs`` fit to show, log or audit: secret-looking ones replaced by a mask."""
    return {name: MASK if is_secret(name) else str(value) for name, value in inputs.items()}


def scrub(text: str | None, inputs: Mapping[str, str]) -> str | None:
    """``text`` (an error Code Stream sent back) with the values of secret inputs masked."""
    if not text:
        return text
    for name, value in inputs.items():
        if is_secret(name) and len(value) >= 3:
            text = text.replace(value, MASK)
    return text


def parse_run_words(words: Sequence[str]) -> tuple[str, str | None, dict[str, str]]:
    """``<pipeline> [project:<name>] [name=value …]`` (values may be quoted) -> the pipeline as
    typed, the project and the inputs; UsageError for anything else."""
    # Slack sends the text HTML-escaped (& < >) and macOS turns quotes into curly ones.
    text = html.unescape(" ".join(words)).translate(_SMART_QUOTES)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split, lexer.escape = True, ""  # C:\\builds stays as typed
    try:
        tokens = list(lexer)
    except ValueError:
        raise UsageError('A quote is not closed: write `name="a value with spaces"`.') from None
    ref, project, inputs = "", None, {}
    for token in tokens:
        name, eq, value = token.partition("=")
        if eq and name and "://" not in name and not name.startswith("<"):
            if name in inputs:
                raise UsageError(f"The input `{name[:40]}` is given twice.")
            inputs[name] = _unlinked(value)
        elif token.lower().startswith("project:") and len(token) > len("project:"):
            project = token[len("project:") :]
        elif not ref:
            ref = token.strip("<>").split("|", 1)[0]  # a link Slack formatted: <url|label>
        else:
            shown = "that word" if is_secret(token) else f"`{token[:40]}`"
            raise UsageError(f"I don't know what {shown} means here: inputs are written `name=value`.")
    if not ref:
        raise UsageError("Say which pipeline: `/codestream run <pipeline> [project:<name>] [name=value …]`.")
    return ref, project, inputs


def parse_input_lines(text: str) -> dict[str, str]:
    """A workflow step's ``inputs``: one ``name=value`` per line (blank lines skipped)."""
    inputs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, eq, value = line.partition("=")
        if not eq or not name.strip():  # the line is not echoed: it may hold a secret
            raise UsageError(f"Each line of the inputs is `name=value`; line {number} is not.")
        if name.strip() in inputs:
            raise UsageError(f"The input `{name.strip()[:40]}` is given twice.")
        inputs[name.strip()] = value.strip()
    return inputs


def _unlinked(value: str) -> str:
    """A value Slack turned into a link (``<https://x|x>``) as it was typed."""
    if value.startswith("<") and value.endswith(">"):
        return value[1:-1].split("|", 1)[0]
    return value


class RunRefused(BotError):
    """The run cannot be asked for as given (unknown pipeline, ambiguous name, unknown input,
    disabled pipeline): nothing was sent."""

    default_message = "That pipeline cannot be run as asked."


@dataclass(frozen=True)
class Plan:
    """A pipeline found, the inputs given, and the mandatory ones still missing (a form asks)."""

    pipeline: Pipeline
    given: dict[str, str]
    missing: tuple[PipelineInput, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


def plan_inputs(pipeline: Pipeline, given: Mapping[str, str]) -> Plan:
    """Checks the names given; the mandatory inputs without a value are what is missing."""
    check_inputs(pipeline, given, complete=False)
    missing = tuple(i for i in pipeline.inputs() if i.mandatory and not str(given.get(i.name, "")).strip())
    return Plan(pipeline, dict(given), missing)


def check_inputs(pipeline: Pipeline, given: Mapping[str, str], *, complete: bool) -> None:
    """RunRefused for an input the pipeline does not declare, and (``complete``) for a
    mandatory one without a value."""
    declared = [i.name for i in pipeline.inputs()]
    unknown = sorted(name for name in given if name not in declared)
    if unknown:
        takes = ", ".join(f"`{name}`" for name in declared) or "no inputs"
        names = ", ".join(f"`{name}`" for name in unknown)
        raise RunRefused(f"{pipeline.name or 'The pipeline'} has no input {names}; it takes {takes}.")
    if complete:
        missing = [i.name for i in pipeline.inputs() if i.mandatory and not str(given.get(i.name, "")).strip()]
        if missing:
            names = ", ".join(f"`{name}`" for name in missing)
            raise RunRefused(f"{pipeline.name or 'The pipeline'} needs a value for {names}.")
