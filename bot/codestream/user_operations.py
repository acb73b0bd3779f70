"""Code Stream user operations: the manual approvals a pipeline waits on
(``GET /codestream/api/user-operations``, ``POST /codestream/api/user-operations/{id}`` with a
``UserOpResponse {status, responseMessage}``).

Statuses are read leniently: the spec's example writes ``Approved`` where its enum (on
``UserOpResource``) says ``APPROVED``; the bot always sends the enum form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.codestream.errors import CodeStreamError
from bot.codestream.fields import CodeStreamModel, LenientInt, LenientStr, id_from_link, parse_time

#: The enum of ``UserOpResource.status``.
UserOpStatus: TypeAlias = Literal["ACTIVE", "APPROVED", "REJECTED", "EXPIRED", "CANCELED"]
Decision: TypeAlias = Literal["APPROVED", "REJECTED"]
_STATUSES: Final = frozenset({"ACTIVE", "APPROVED", "REJECTED", "EXPIRED", "CANCELED"})
_SPELLINGS: Final = {"CANCELLED": "CANCELED", "APPROVE": "APPROVED", "REJECT": "REJECTED"}


def normal_status(value: object) -> UserOpStatus | None:
    """``Approved``, ``approved``, ``APPROVED`` (and ``Cancelled``) -> the enum form; None when
    it is none of them."""
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    text = _SPELLINGS.get(text, text)
    return text if text in _STATUSES else None  # type: ignore[return-value]


def _emails(value: Any) -> list[str]:
    """``approvers``: a list of e-mails; the spec's example is one string (perhaps comma-separated)."""
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    found: list[str] = []
    for item in items:
        if isinstance(item, str):
            found += [part.strip() for part in item.split(",") if part.strip()]
    return found


Emails = Annotated[list[str], BeforeValidator(_emails)]


class UserOperation(CodeStreamModel):
    id: LenientStr = None
    name: LenientStr = None
    summary: LenientStr = None
    description: LenientStr = None
    raw_status: LenientStr = Field(None, alias="status")
    approvers: Emails = Field(default_factory=list)
    approver_groups: Emails = Field(default_factory=list, alias="approverGroups")
    expires_on_micros: LenientInt = Field(None, alias="_expiresOnInMicros")
    expires_on_micros_v2: LenientInt = Field(None, alias="expiresOnInMicros")
    requested_on_micros: LenientInt = Field(None, alias="_requestedOnInMicros")
    requested_by: LenientStr = Field(None, alias="requestedBy")
    responded_by: LenientStr = Field(None, alias="respondedBy")
    response_message: LenientStr = Field(None, alias="responseMessage")
    execution_id_field: LenientStr = Field(None, alias="executionId")
    execution_link: LenientStr = Field(None, alias="executionLink")
    execution_index: LenientInt = Field(None, alias="executionIndex")
    pipeline_name: LenientStr = Field(None, alias="pipelineName")
    pipeline_field: LenientStr = Field(None, alias="pipeline")
    project: LenientStr = None

    @property
    def status(self) -> UserOpStatus | None:
        return normal_status(self.raw_status)

    @property
    def pending(self) -> bool:
        return self.status == "ACTIVE"

    @property
    def expires_at(self) -> datetime | None:
        micros = self.expires_on_micros if self.expires_on_micros is not None else self.expires_on_micros_v2
        return parse_time(micros)

    @property
    def execution_id(self) -> str | None:
        return id_from_link(self.execution_link) or (self.execution_id_field or None)

    @property
    def pipeline(self) -> str | None:
        return self.pipeline_name or self.pipeline_field


class UserOpResponse(BaseModel):
    """The spec's ``UserOpResponse``, always with the enum form of the status."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: Decision
    response_message: str = Field("", alias="responseMessage")


MAX_RESPONSE_MESSAGE: Final = 1000

UserOpResultState = Literal["succeeded", "ignored", "not_started", "unknown"]


@dataclass(frozen=True)
class UserOpResult:
    """What a decision did: ``succeeded`` (``operation`` shows it decided as asked, as
    answered or read back), ``ignored`` (Code Stream answered, but the operation, read back, is
    not decided that way: it kept it open, e.g. the bot's account is not an approver),
    ``not_started`` (nothing sent), ``unknown`` (it may have arrived; still ACTIVE when read)."""

    state: UserOpResultState
    before: UserOperation
    operation: UserOperation | None = None
    error: CodeStreamError | None = None
