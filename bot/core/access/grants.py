"""What a person may do where, per the policy: the answer to ``/codestream whoami``, so operators
(and the person) can see how the access rules apply without trying actions."""

from __future__ import annotations

from dataclasses import dataclass

from bot.codestream.models import EventKind
from bot.core.verbs import AccessAction


@dataclass(frozen=True)
class Grant:
    """Some verbs on some events. Empty tuples mean "any"."""

    actions: tuple[AccessAction, ...]
    kinds: tuple[EventKind, ...] = ()
    projects: tuple[str, ...] = ()  # exact or glob
    pipelines: tuple[str, ...] = ()
    rule: int | None = None  # the rule's number, as ``codestream-bot check`` lists them


@dataclass(frozen=True)
class Grants:
    here: tuple[Grant, ...] = ()  # in the channel asked about
    elsewhere: tuple[tuple[str, Grant], ...] = ()  # (channel id, what is allowed only there)
    policy: bool = True  # False: no policy is set and everyone may do everything
    unchecked_groups: tuple[str, ...] = ()  # user groups whose membership could not be checked
    refused: str | None = None  # why the bot serves this person nothing at all (their workspace)
