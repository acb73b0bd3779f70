"""The triggers events come through — git webhooks (``GET /codestream/api/git-webhooks``, ``GET
…/git-webhooks/{id}``), Gerrit listeners (``GET …/gerrit-listeners/{project}/{name}``) and Docker
registry webhooks (``GET …/registry-webhooks``): which pipeline a trigger starts, and who created
and last saved it (who can fix it when its API token expired). Their secrets (``refreshToken``,
``apiToken``: the Code Stream API token a trigger was saved with, and ``secretToken``) are not
read: the models have no field for them, so they cannot reach a log line, a message or an
exception."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from pydantic import ConfigDict, Field

from bot.codestream.fields import CodeStreamModel, LenientInt, LenientStr
from bot.codestream.ids import validate_server_id
from bot.codestream.pages import DocumentPage
from bot.codestream.session import API, ApiSession, Exchange

#: Webhooks read from one list at most.
MAX_WEBHOOKS: Final = 500


class GitWebhook(CodeStreamModel):
    # Unlike other documents, nothing unknown is kept: the secrets stay out of the model.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    id: LenientStr = None
    name: LenientStr = None
    project: LenientStr = None
    repo_name: LenientStr = Field(None, alias="repoName")
    branch_name: LenientStr = Field(None, alias="branchName")
    pipeline: LenientStr = None
    server_webhook_id: LenientStr = Field(None, alias="serverWebhookId")
    server_type: LenientStr = Field(None, alias="serverType")
    created_by: LenientStr = Field(None, alias="createdBy")
    updated_by: LenientStr = Field(None, alias="updatedBy")
    created_at: LenientStr = Field(None, alias="createdAt")
    updated_at: LenientStr = Field(None, alias="updatedAt")
    update_time_micros: LenientInt = Field(None, alias="_updateTimeInMicros")
    link: LenientStr = Field(None, alias="_link")


class GerritListener(CodeStreamModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    id: LenientStr = None
    name: LenientStr = None
    project: LenientStr = None
    connected: bool | None = None
    created_by: LenientStr = Field(None, alias="createdBy")
    updated_by: LenientStr = Field(None, alias="updatedBy")
    updated_at: LenientStr = Field(None, alias="updatedAt")


class RegistryWebhook(CodeStreamModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    id: LenientStr = None
    name: LenientStr = None
    project: LenientStr = None
    repo_name: LenientStr = Field(None, alias="repoName")
    pipeline: LenientStr = None
    created_by: LenientStr = Field(None, alias="createdBy")
    updated_by: LenientStr = Field(None, alias="updatedBy")
    updated_at: LenientStr = Field(None, alias="updatedAt")


class WebhookApi(ApiSession):
    """The webhook operations of :class:`~bot.codestream.client.CodeStreamClient`."""

    async def list_git_webhooks(
        self, *, filter: str | None = None, top: int = 100, retry: bool = True
    ) -> list[GitWebhook]:
        """Git webhooks (``filter`` e.g. ``project eq 'Payments'``), one page of at most ``top``;
        ``retry=False``: one attempt (an alert must not wait on retries for its details)."""
        docs = await self._list_triggers("git webhooks", "git-webhooks", filter, top, retry)
        return [GitWebhook.model_validate(doc) for doc in docs]

    async def get_git_webhook(self, webhook_id: str) -> GitWebhook:
        webhook_id = validate_server_id(webhook_id)
        body = await self._get_json(
            "get git webhook", Exchange("GET", f"{API}/git-webhooks/{webhook_id}"), what=f"git webhook {webhook_id}"
        )
        return GitWebhook.model_validate(body)

    async def get_gerrit_listener(self, project: str, name: str, *, retry: bool = True) -> GerritListener:
        """The Gerrit listener ``name`` of ``project`` (a Gerrit event names its listener)."""
        path = f"{API}/gerrit-listeners/{quote(project, safe='')}/{quote(name, safe='')}"
        body = await self._get_json("get gerrit listener", Exchange("GET", path), what="gerrit listener", retry=retry)
        return GerritListener.model_validate(body)

    async def list_registry_webhooks(
        self, *, filter: str | None = None, top: int = 100, retry: bool = True
    ) -> list[RegistryWebhook]:
        """Docker registry webhooks (``filter`` e.g. ``project eq 'Payments'``), one page."""
        docs = await self._list_triggers("registry webhooks", "registry-webhooks", filter, top, retry)
        return [RegistryWebhook.model_validate(doc) for doc in docs]

    async def _list_triggers(
        self, what: str, collection: str, filter: str | None, top: int, retry: bool
    ) -> list[dict[str, Any]]:
        params = {"$top": str(min(top, MAX_WEBHOOKS))}
        if filter:
            params["$filter"] = filter
        exchange = Exchange("GET", f"{API}/{collection}", params)
        body = await self._get_json(f"list {what}", exchange, what=what, retry=retry)
        return DocumentPage.model_validate(body).ordered_documents()[:MAX_WEBHOOKS]
