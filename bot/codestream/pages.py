"""The envelopes Code Stream answers in: the ``about`` document and list pages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.codestream.events import Event, EventKind
from bot.codestream.fields import CodeStreamModel, LenientDict, LenientInt, LenientStr


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
