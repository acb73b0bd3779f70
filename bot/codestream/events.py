"""The events that trigger pipelines: git, Gerrit and Docker registry, one model each.

Each kind names its branch, commit and repository in its own fields; the properties
(``branch``, ``commit_subject``, ``repository``, ...) give the same view of all three.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final, Literal, TypeAlias

from pydantic import Field

from bot.codestream.executions import FAILED_STATUSES
from bot.codestream.fields import (
    CodeStreamModel,
    IntOrStr,
    LenientDict,
    LenientInt,
    LenientStr,
    UrlStr,
    id_from_link,
    lenient_str,
    parse_time,
)

EventKind: TypeAlias = Literal["git", "gerrit", "docker"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = ("git", "gerrit", "docker")


def as_kind(value: object) -> EventKind | None:
    """A kind read back from elsewhere (a stored row, a button's value) as an EventKind."""
    return next((kind for kind in EVENT_KINDS if kind == value), None)


# Code Stream's collection for each kind of event.
KIND_COLLECTION: Final[dict[EventKind, str]] = {
    "git": "git-events",
    "gerrit": "gerrit-events",
    "docker": "registry-events",
}
KIND_LABEL: Final[dict[EventKind, str]] = {"git": "Git", "gerrit": "Gerrit", "docker": "Docker registry"}

# The documented query values, exactly as Code Stream spells them.
CodeStreamAction: TypeAlias = Literal["Resume", "Rerun"]


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
    def passed(self) -> bool:
        """Its latest run completed: what was broken works again."""
        return (self.execution_status or "").upper() == "COMPLETED"

    @property
    def is_failure(self) -> bool:
        """The pipeline run failed, or the trigger itself failed (``message`` set, no run)."""
        status = (self.execution_status or "").upper()
        return status in FAILED_STATUSES or self.trigger_failed

    @property
    def trigger_failed(self) -> bool:
        """Code Stream received it but started no run: ``message`` set, no execution (a git
        webhook whose API token expired, most often)."""
        return bool((self.message or "").strip()) and not self.execution_link


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
        return self.branch_ or lenient_str(self.properties.get("GERRIT_BRANCH"))

    @property
    def commit_subject(self) -> str | None:
        return self.subject or lenient_str(self.properties.get("GERRIT_CHANGE_SUBJECT"))

    @property
    def commit_id(self) -> str | None:
        return lenient_str(self.properties.get("GERRIT_PATCHSET_REVISION"))

    @property
    def commit_url(self) -> str | None:
        return lenient_str(self.properties.get("GERRIT_CHANGE_URL"))

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
