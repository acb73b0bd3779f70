"""The command registry: one record per command (name, aliases, usage, help text, how its
arguments parse, and a handler) drives parsing, ``help``, usage errors and dispatch.

Pure and Slack-free: the table is generic in its handler type, so the Slack layer builds its
table (``bot.slack.commands``) with handlers that answer in Slack, and this module only knows
words. Malformed input raises UsageError with the command's own usage line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from bot.codestream.models import EventKind
from bot.core.errors import UsageError
from bot.core.targets import KINDS, TARGET_USAGE, parse_execution_target, parse_target
from bot.core.verbs import VERBS, Verb

H = TypeVar("H")
MAX_TEXT: Final = 2000


@dataclass(frozen=True)
class Invocation:
    """A parsed command: which one, and its arguments."""

    command: str
    kind: EventKind | None = None  # set for verbs; for ``list``, None means every kind
    event_id: str | None = None
    args: tuple[str, ...] = ()


# (the command's name, the words after it) -> its invocation; raises UsageError.
Arguments = Callable[[str, list[str]], Invocation]


def no_arguments(name: str, words: list[str]) -> Invocation:
    if words:
        raise UsageError(f"`{name}` takes no arguments.")
    return Invocation(name)


def event_target(name: str, words: list[str]) -> Invocation:
    kind, event_id = parse_target(words, command=name)
    return Invocation(name, kind, event_id)


def execution_target(name: str, words: list[str]) -> Invocation:
    """``<execution id or link>``: the id travels in ``event_id`` (no kind)."""
    return Invocation(name, None, parse_execution_target(words, command=name))


def optional_kind(name: str, words: list[str]) -> Invocation:
    if not words:
        return Invocation(name)
    if len(words) == 1 and words[0].lower() in KINDS:
        return Invocation(name, KINDS[words[0].lower()])
    raise UsageError(f"`{name}` takes at most an event kind (git, gerrit, docker).")


def free_words(name: str, words: list[str]) -> Invocation:
    """The handler parses them (e.g. ``audit``'s filters)."""
    return Invocation(name, args=tuple(words))


@dataclass(frozen=True)
class Command(Generic[H]):
    name: str
    usage: str  # the arguments, as help shows them: "[git|gerrit|docker] <event id or link>"
    help: str  # one line for help
    handler: H
    aliases: tuple[str, ...] = ()
    arguments: Arguments = no_arguments
    verb: Verb | None = None  # the verb it performs, when it is one
    instant: bool = False  # answered in the ack itself (pure, no I/O): help
    opens_form: bool = False  # may open a form: started at once, not behind other work (Slack's 3 s)


def verb_command(verb: Verb, handler: H) -> Command[H]:
    """The command record of a verb, read from the verb registry."""
    spec = VERBS[verb]
    return Command(
        spec.name, TARGET_USAGE, spec.help, handler, aliases=spec.aliases, arguments=event_target, verb=spec.name
    )


@dataclass(frozen=True)
class CommandTable(Generic[H]):
    """The commands of one slash command (``prefix``), in the order help lists them."""

    prefix: str
    commands: Sequence[Command[H]]
    default: str = "help"  # what an empty command means
    _index: dict[str, Command[H]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Command[H]] = {}
        for command in self.commands:
            for word in (command.name, *command.aliases):
                if word in index:
                    raise ValueError(f"command word {word!r} is used twice")
                index[word] = command
        if self.default not in index:
            raise ValueError(f"the default command {self.default!r} is not in the table")
        object.__setattr__(self, "_index", index)

    def __iter__(self) -> Iterator[Command[H]]:
        return iter(self.commands)

    def find(self, word: str) -> Command[H] | None:
        return self._index.get(word.lower())

    def line(self, command: Command[H]) -> str:
        """``/codestream rerun [git|gerrit|docker] <event id or link>``"""
        return f"{self.prefix} {command.name} {command.usage}".rstrip()

    @property
    def usage(self) -> str:
        """One usage line for every error: the verbs folded together, then the others."""
        verbs = [c for c in self.commands if c.verb is not None]
        parts = []
        if verbs:
            parts.append(f"`{self.prefix} {'|'.join(c.name for c in verbs)} {verbs[0].usage}`")
        parts += [f"`{self.line(c)}`" for c in self.commands if c.verb is None]
        return "Usage: " + ", ".join(parts)

    @property
    def hint(self) -> str:
        """The short hint Slack shows while typing (the manifest's usage_hint)."""
        verbs = [c for c in self.commands if c.verb is not None]
        parts = [f"{'|'.join(c.name for c in verbs)} {verbs[0].usage}"] if verbs else []
        parts += [c.name for c in self.commands if c.verb is None and c.name != self.default]
        return " | ".join([*parts, self.default])

    def parse(self, text: str) -> tuple[Command[H], Invocation]:
        if len(text) > MAX_TEXT:
            raise UsageError(f"That command is too long. {self.usage}")
        words = text.split()
        if not words:
            default = self._index[self.default]
            return default, Invocation(default.name)
        command = self.find(words[0])
        if command is None:
            shown = words[0] if len(words[0]) <= 30 else words[0][:27] + "..."
            raise UsageError(f"Unknown command `{shown}`. {self.usage}")
        try:
            return command, command.arguments(command.name, words[1:])
        except UsageError as exc:
            raise UsageError(f"{exc.user_message} {self.usage}") from None
