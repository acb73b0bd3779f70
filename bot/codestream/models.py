"""pydantic models of the Code Stream resources the bot reads.

Real servers disagree with the official spec (its own example sends ``timeStampInMicros`` as a
date string while the schema says int64; ``serverURL`` is a URI object, a string or absent), and
newer versions add fields. So every field is optional, unknown fields are kept, and values of a
surprising type are coerced or dropped instead of failing validation: a strange field must never
stop the bot from showing or rerunning an event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.codestream.ids import is_valid_id

EventKind: TypeAlias = Literal["git", "gerrit", "docker"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = ("git", "gerrit", "docker")

# Code Stream's collection for each kind of event.
KIND_COLLECTION: Final[dict[EventKind, str]] = {
    "git": "git-events",
    "gerrit": "gerrit-events",
    "docker": "registry-events",
}
KIND_LABEL: Final[dict[EventKind, str]] = {"git": "Git", "gerrit": "Gerrit", "docker": "Docker registry"}

# The documented query values, exactly as Code Stream spells them.
CodeStreamAction: TypeAlias = Literal["Resume", "Rerun"]

TERMINAL_STATUSES: Final = frozenset(
    {"CANCELED", "COMPLETED", "FAILED", "SKIPPED", "ROLLBACK_FAILED", "ROLLBACK_COMPLETED", "FAILED_CONTINUE"}
)
FAILED_STATUSES: Final = frozenset({"FAILED", "ROLLBACK_FAILED", "FAILED_CONTINUE", "CANCELED"})


def _lenient_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _lenient_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _url_like(value: Any) -> str | None:
    """serverURL is documented as a java.net.URI object; some servers send a plain string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        scheme, host = value.get("scheme"), value.get("host")
        if isinstance(scheme, str) and isinstance(host, str) and scheme and host:
            port = value.get("port")
            port_part = f":{port}" if isinstance(port, int) and port > 0 else ""
            path = value.get("path") if isinstance(value.get("path"), str) else ""
            return f"{scheme}://{host}{port_part}{path}"
        for key in ("string", "uri", "href"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def _int_or_str(value: Any) -> int | str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


LenientInt = Annotated[int | None, BeforeValidator(_lenient_int)]
LenientStr = Annotated[str | None, BeforeValidator(_lenient_str)]
UrlStr = Annotated[str | None, BeforeValidator(_url_like)]
IntOrStr = Annotated[int | str | None, BeforeValidator(_int_or_str)]
LenientDict = Annotated[dict[str, Any], BeforeValidator(_dict_or_empty)]


def parse_time(value: int | str | None) -> datetime | None:
    """Parse Code Stream's several time formats: micros since epoch or ISO-ish strings."""
    if value is None:
        return None
    if isinstance(value, int):
        seconds = value / 1_000_000 if value > 10**14 else value / 1000 if value > 10**11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def id_from_link(link: str | None) -> str | None:
    """``/codestream/api/executions/<uuid>`` -> ``<uuid>`` (None when it is not a UUID)."""
    if not link:
        return None
    last = link.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return last.lower() if is_valid_id(last) else None


class CodeStreamModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class CodeStreamEvent(CodeStreamModel):
    """Fields common to git, Gerrit and Docker registry events."""

    kind: ClassVar[EventKind]

    id: LenientStr = None
    name: LenientStr = None
    description: LenientStr = None
    project: LenientStr = None
    pipeline: LenientStr = None
    owner: LenientStr = None
    message: LenientStr = None
    execution_index: LenientInt = Field(None, alias="executionIndex")
    execution_link: LenientStr = Field(None, alias="executionLink")
    execution_status: LenientStr = Field(None, alias="executionStatus")
    created_at: LenientStr = Field(None, alias="createdAt")
    updated_at: LenientStr = Field(None, alias="updatedAt")
    create_time_micros: LenientInt = Field(None, alias="_createTimeInMicros")
    update_time_micros: LenientInt = Field(None, alias="_updateTimeInMicros")
    link: LenientStr = Field(None, alias="_link")

    @property
    def execution_id(self) -> str | None:
        return id_from_link(self.execution_link)

    @property
    def updated(self) -> datetime | None:
        return parse_time(self.update_time_micros) or parse_time(self.updated_at)

    @property
    def branch(self) -> str | None:
        return None

    @property
    def commit_subject(self) -> str | None:
        return None

    @property
    def commit_id(self) -> str | None:
        return None

    @property
    def short_commit(self) -> str | None:
        return self.commit_id[:7] if self.commit_id else None

    @property
    def commit_url(self) -> str | None:
        return None

    @property
    def repository(self) -> str | None:
        return None

    @property
    def is_failure(self) -> bool:
        """The pipeline run failed, or the trigger itself failed (``message`` set, no run)."""
        status = (self.execution_status or "").upper()
        if status in FAILED_STATUSES:
            return True
        trigger_failed = bool((self.message or "").strip()) and not self.execution_link
        return trigger_failed


class GitEvent(CodeStreamEvent):
    kind: ClassVar[EventKind] = "git"

    repo: LenientStr = None
    subject: LenientStr = None
    target_branch: LenientStr = Field(None, alias="targetBranch")
    commit_id_: LenientStr = Field(None, alias="commitId")
    http_url: LenientStr = Field(None, alias="httpURL")
    server_url: UrlStr = Field(None, alias="serverURL")
    server_webhook_id: LenientStr = Field(None, alias="serverWebhookId")
    time_stamp: IntOrStr = Field(None, alias="timeStampInMicros")

    @property
    def branch(self) -> str | None:
        return self.target_branch

    @property
    def commit_subject(self) -> str | None:
        return self.subject

    @property
    def commit_id(self) -> str | None:
        return self.commit_id_

    @property
    def commit_url(self) -> str | None:
        return self.http_url

    @property
    def repository(self) -> str | None:
        return self.repo

    @property
    def commit_time(self) -> datetime | None:
        return parse_time(self.time_stamp)


class GerritEvent(CodeStreamEvent):
    kind: ClassVar[EventKind] = "gerrit"

    branch_: LenientStr = Field(None, alias="branch")
    subject: LenientStr = None
    gerrit_project: LenientStr = Field(None, alias="gerritProject")
    change_number: LenientInt = Field(None, alias="changeNumber")
    patch_set_number: LenientInt = Field(None, alias="patchSetNumber")
    listener: LenientStr = None
    action_taken: LenientStr = Field(None, alias="actionTaken")
    properties: LenientDict = Field(default_factory=dict)
    created_on: IntOrStr = Field(None, alias="createdOn")

    @property
    def branch(self) -> str | None:
        return self.branch_ or _lenient_str(self.properties.get("GERRIT_BRANCH"))

    @property
    def commit_subject(self) -> str | None:
        return self.subject or _lenient_str(self.properties.get("GERRIT_CHANGE_SUBJECT"))

    @property
    def commit_id(self) -> str | None:
        return _lenient_str(self.properties.get("GERRIT_PATCHSET_REVISION"))

    @property
    def commit_url(self) -> str | None:
        return _lenient_str(self.properties.get("GERRIT_CHANGE_URL"))

    @property
    def repository(self) -> str | None:
        return self.gerrit_project


class DockerRegistryEvent(CodeStreamEvent):
    kind: ClassVar[EventKind] = "docker"

    repo: LenientStr = None
    repo_namespace: LenientStr = Field(None, alias="repoNamespace")
    image_name: LenientStr = Field(None, alias="imageName")
    tag: LenientStr = None
    time_stamp: IntOrStr = Field(None, alias="timeStampInMicros")

    @property
    def branch(self) -> str | None:
        return self.tag

    @property
    def commit_subject(self) -> str | None:
        if self.image_name and self.tag:
            return f"{self.image_name}:{self.tag}"
        return self.image_name

    @property
    def repository(self) -> str | None:
        if self.repo_namespace and self.repo:
            return f"{self.repo_namespace}/{self.repo}"
        return self.repo or self.image_name


Event: TypeAlias = GitEvent | GerritEvent | DockerRegistryEvent

EVENT_MODELS: Final[dict[EventKind, type[GitEvent] | type[GerritEvent] | type[DockerRegistryEvent]]] = {
    "git": GitEvent,
    "gerrit": GerritEvent,
    "docker": DockerRegistryEvent,
}


def parse_event(kind: EventKind, document: dict[str, Any]) -> Event:
    return EVENT_MODELS[kind].model_validate(document)


class Execution(CodeStreamModel):
    id: LenientStr = None
    name: LenientStr = None
    index: LenientInt = None
    project: LenientStr = None
    status: LenientStr = None
    status_message: LenientStr = Field(None, alias="statusMessage")
    duration_micros: LenientInt = Field(None, alias="_durationInMicros")
    executed_by: LenientStr = Field(None, alias="_executedBy")
    pipeline_link: LenientStr = Field(None, alias="_pipelineLink")
    request_time_micros: LenientInt = Field(None, alias="_requestTimeInMicros")
    update_time_micros: LenientInt = Field(None, alias="_updateTimeInMicros")
    created_at: LenientStr = Field(None, alias="createdAt")
    updated_at: LenientStr = Field(None, alias="updatedAt")
    comments: LenientStr = None
    link: LenientStr = Field(None, alias="_link")

    @property
    def is_terminal(self) -> bool:
        return (self.status or "").upper() in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        return self.duration_micros / 1_000_000 if self.duration_micros is not None else None


class About(CodeStreamModel):
    latest_api_version: LenientStr = Field(None, alias="latestApiVersion")
    supported_apis: list[Any] = Field(default_factory=list, alias="supportedApis")


class DocumentPage(CodeStreamModel):
    """The list envelope: ``{count, totalCount, links, documents: {link: object}}``."""

    count: LenientInt = None
    total_count: LenientInt = Field(None, alias="totalCount")
    links: list[str] = Field(default_factory=list)
    documents: LenientDict = Field(default_factory=dict)

    def ordered_documents(self) -> list[dict[str, Any]]:
        """Documents in the order of ``links`` (the server's sort order), then any others."""
        seen: set[str] = set()
        ordered: list[dict[str, Any]] = []
        for link in self.links:
            doc = self.documents.get(link)
            if isinstance(doc, dict) and link not in seen:
                ordered.append(doc)
                seen.add(link)
        for link, doc in self.documents.items():
            if link not in seen and isinstance(doc, dict):
                ordered.append(doc)
        return ordered


class EventPage(BaseModel):
    """One page of parsed events, plus the server's totals for paging."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: EventKind
    events: list[Event]
    count: int
    total_count: int | None
