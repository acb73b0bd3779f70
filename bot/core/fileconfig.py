"""The optional ``BOT_CONFIG`` YAML file: alert routing rules (and, later, access rules).

    routes:
      - match: {kind: git, project: Payments, branch: "release/*"}
        channel: C0PAYMENTS
        mention: "<!subteam^S0PAYOPS>"
      - match: {pipeline: "*-nightly"}
        drop: true

Everything is validated at start-up; a problem is reported as one line naming the rule and the
field (``BOT_CONFIG routes[2].match.kind: must be git, gerrit or docker (got 'svn')``) through
:class:`bot.core.errors.ConfigError`, like a bad environment variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from bot.codestream.models import EVENT_KINDS
from bot.errors import ConfigError

PREFIX: Final = "BOT_CONFIG"
MATCH_FIELDS: Final = ("kind", "project", "pipeline", "repo", "branch")

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(\|[^>]*)?>$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_GROUP_MENTION = re.compile(r"^<!subteam\^(S[A-Z0-9]{2,})(\|[^>]*)?>$")
_BROADCASTS: Final = ("here", "channel", "everyone")


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _patterns(value: Any) -> tuple[str, ...]:
    """A string or a non-empty list of strings. Numbers are refused rather than converted: YAML
    reads ``branch: 1.10`` as the float 1.1, which would silently match the wrong branch."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ValueError("must not be an empty list")
    for item in items:
        if not isinstance(item, str):
            hint = f"; quote it: '{item}'" if isinstance(item, int | float) and not isinstance(item, bool) else ""
            raise ValueError(f"must be a string or a list of strings{hint} (got {_show(item)})")
        if not item.strip():
            raise ValueError("must not be empty")
    return tuple(items)


#: What a route's ``kind`` may name: the event kinds, and ``approval`` (Code Stream approvals).
RouteKind: TypeAlias = Literal["git", "gerrit", "docker", "approval"]
_ROUTE_KINDS: Final[tuple[RouteKind, ...]] = (*EVENT_KINDS, "approval")


def _kinds(value: Any) -> tuple[RouteKind, ...]:
    kinds: list[RouteKind] = []
    for item in _patterns(value):
        matched = next((k for k in _ROUTE_KINDS if k == item.strip().lower()), None)
        if matched is None:
            raise ValueError(f"must be git, gerrit, docker or approval (got {_show(item)})")
        kinds.append(matched)
    return tuple(kinds)


def _channel(value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_ID.match(value.strip()):
        raise ValueError(
            f"must be a Slack channel id such as C0123ABCD, not a channel name (got {_show(value)}); "
            "copy it from the channel's details"
        )
    return value.strip()


def normalize_mention(value: Any) -> str:
    """``U123`` / ``<@U123>`` -> ``<@U123>``; ``S123`` / ``<!subteam^S123>`` -> ``<!subteam^S123>``.
    Broadcasts (@here, @channel, @everyone) are refused: an alert must page the owning team,
    not the whole channel."""
    if not isinstance(value, str):
        raise ValueError(f"must be a user id (U...) or a user group (<!subteam^S...>) (got {_show(value)})")
    text = value.strip()
    bare = text.strip("<>!@").split("|", 1)[0].lower()
    if bare in _BROADCASTS:
        raise ValueError(
            f"broadcast mentions such as @here, @channel and @everyone are not allowed (got {_show(value)}); "
            "mention a user group (<!subteam^S...>) or a user (U...)"
        )
    if _USER_ID.match(text):
        return f"<@{text}>"
    if _GROUP_ID.match(text):
        return f"<!subteam^{text}>"
    if _USER_MENTION.match(text) or _GROUP_MENTION.match(text):
        return text
    raise ValueError(f"must be a user id (U...) or a user group (<!subteam^S...>) (got {_show(value)})")


# What the validators accept, as JSON Schema sees it (``codestream-bot config --json-schema``): the
# canonical form; the validators also forgive surrounding spaces and, in ``kind``, upper case.
_Text = Annotated[str, Field(pattern=r"\S")]
_OneOrMore = _Text | Annotated[list[_Text], Field(min_length=1)] | None
_KindsInput = RouteKind | Annotated[list[RouteKind], Field(min_length=1)] | None
_ChannelInput = Annotated[str, Field(pattern=_CHANNEL_ID.pattern)] | None
_MENTION_FORMS: Final = (
    r"^(?:[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,}|<@[UW][A-Z0-9]{2,}(?:\|[^>]*)?>|<!subteam\^S[A-Z0-9]{2,}(?:\|[^>]*)?>)$"
)
_MentionInput = Annotated[str, Field(pattern=_MENTION_FORMS)] | None

Patterns = Annotated[
    tuple[str, ...] | None,
    BeforeValidator(lambda v: None if v is None else _patterns(v), json_schema_input_type=_OneOrMore),
]
Kinds = Annotated[
    tuple[RouteKind, ...] | None,
    BeforeValidator(lambda v: None if v is None else _kinds(v), json_schema_input_type=_KindsInput),
]
ChannelId = Annotated[
    str | None, BeforeValidator(lambda v: None if v is None else _channel(v), json_schema_input_type=_ChannelInput)
]
Mention = Annotated[
    str | None,
    BeforeValidator(lambda v: None if v is None else normalize_mention(v), json_schema_input_type=_MentionInput),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Every given field must match (AND); a list means any of its patterns (OR)."""

    kind: Kinds = Field(None, description="`git`, `gerrit`, `docker` or `approval` (approval requests), or a list.")
    project: Patterns = Field(None, description="Code Stream project: a name or glob (`*`, `?`, `[…]`), or a list.")
    pipeline: Patterns = Field(None, description="Pipeline name: a name or glob, or a list.")
    repo: Patterns = Field(None, description="Repository name: a name or glob, or a list.")
    branch: Patterns = Field(
        None, description="Branch: a name or glob, or a list. Quote names YAML reads as numbers (`'1.10'`)."
    )


class Route(_Strict):
    """A routing rule: where the failures it matches are alerted. The first rule that matches wins."""

    # For editors (JSON Schema): a channel, or ``drop: true`` without channel or mention, as _one_target says.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["channel"], "properties": {"channel": {"type": "string"}, "drop": {"const": False}}},
                {
                    "required": ["drop"],
                    "properties": {"drop": {"const": True}, "channel": {"type": "null"}, "mention": {"type": "null"}},
                },
            ]
        },
    )

    match: Match = Field(Match(), description="What the rule matches; no field at all matches everything.")
    channel: ChannelId = Field(None, description="The channel id (`C…`/`G…`, not a name) to alert in; or `drop: true`.")
    drop: bool = Field(False, description="`true`: no alert at all for what the rule matches (instead of a channel).")
    mention: Mention = Field(
        None,
        description="Who the alert @-mentions: a user group (`S…` or `<!subteam^S…>`) or a user (`U…` or "
        "`<@U…>`); never @here, @channel or @everyone.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if self.drop and self.channel:
            raise ValueError("has both channel and drop: true; use one")
        if not self.drop and not self.channel:
            raise ValueError("needs channel: C... (where to alert) or drop: true (no alert)")
        if self.drop and self.mention:
            raise ValueError("has mention with drop: true; a dropped failure mentions nobody")
        return self


def _people(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of a name or e-mail to a Slack user id (got {_show(value)})")
    people: dict[str, str] = {}
    for key, user in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"keys must be names or e-mails (got {_show(key)})")
        bare = user.strip().removeprefix("<@").removesuffix(">").split("|", 1)[0] if isinstance(user, str) else ""
        if not _USER_ID.match(bare):
            raise ValueError(f"{_show(key)} must map to a Slack user id such as U012AB3CD (got {_show(user)})")
        name = key.strip().lower()
        if name in people:
            raise ValueError(f"{_show(key)} appears twice (names and e-mails are compared ignoring case)")
        people[name] = bare
    return people


_UserInput = Annotated[str, Field(pattern=r"^(?:<@)?[UW][A-Z0-9]{2,}(?:\|[^>]*)?>?$")]
People = Annotated[dict[str, str], BeforeValidator(_people, json_schema_input_type=dict[_Text, _UserInput] | None)]


def _approver_groups(value: Any) -> dict[str, str]:
    """Code Stream approver group names -> Slack user group ids (``S…``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must map Code Stream approver groups to Slack user group ids (S...)")
    groups: dict[str, str] = {}
    for key, group in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"keys must be Code Stream group names (got {_show(key)})")
        if not isinstance(group, str) or not _GROUP_ID.match(group.strip()):
            raise ValueError(f"{_show(key)} maps to a Slack user group id such as S0123RELEASE (got {_show(group)})")
        groups[key.strip()] = group.strip()
    return groups


_GroupInput = Annotated[str, Field(pattern=_GROUP_ID.pattern)]
ApproverGroups = Annotated[
    dict[str, str], BeforeValidator(_approver_groups, json_schema_input_type=dict[_Text, _GroupInput] | None)
]


class FileConfig(_Strict):
    """The ``BOT_CONFIG`` file: alert routes, access rules, people and approver groups."""

    routes: tuple[Route, ...] = Field(
        (), description="Alert routing rules, in order: the first that matches decides (a channel, or `drop`)."
    )
    access: Any = Field(  # validated by bot.core.access; kept opaque here
        None, description="The access policy: `rules:`, each allowing some actions to some people, somewhere."
    )
    people: People = Field(
        {},
        description="Author mentions (`BOT_MENTION_AUTHOR`): a Code Stream owner's name or e-mail (any case) "
        "-> a Slack user id (`U…`).",
    )
    approver_groups: ApproverGroups = Field(
        {},
        description="Approvals: a Code Stream approver group -> the Slack user group (`S…`) whose members may "
        "decide for it.",
    )


# --- loading ----------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a rule with two ``channel:`` lines is a mistake."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError([f"{PREFIX} line {line}: key {_show(key)} appears twice in the same mapping"])
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

_TYPE_MESSAGES: Final = {
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "dict_type": "must be a mapping of keys to values",
}
_KEYS: Final = {
    "": "routes, access, people, approver_groups",
    "route": "match, channel, drop, mention",
    "match": ", ".join(MATCH_FIELDS),
}


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _section(loc: tuple[int | str, ...]) -> str:
    """Which mapping an unknown key sits in: the top level, a route or a route's match."""
    if len(loc) <= 1:
        return ""
    return "match" if loc[-2] == "match" else "route"


def _describe(error: ErrorDetails) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key; expected one of: {_KEYS[_section(loc)]}"
    elif kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    else:
        message = _TYPE_MESSAGES.get(kind, str(error["msg"]))
        message += f" (got {_show(error.get('input'))})"
    where = _location(loc)
    return f"{PREFIX} {where}: {message}" if where else f"{PREFIX}: {message}"


def parse_file_config(text: str) -> FileConfig:
    """Validate the YAML text; ConfigError with one line per problem."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError([f"{PREFIX}{where}: invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{PREFIX}: invalid YAML: {exc}"]) from None
    if data is None:
        return FileConfig()
    if not isinstance(data, dict):
        raise ConfigError([f"{PREFIX}: must be a mapping with the keys routes, access and people (got {_show(data)})"])
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(e) for e in exc.errors()]) from None


def load_file_config(path: str | Path | None) -> FileConfig:
    """Read and validate ``BOT_CONFIG``; no path means no file (an empty configuration)."""
    if path is None:
        return FileConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError([f"{PREFIX}: cannot read {path} ({reason})"]) from None
    return parse_file_config(text)
