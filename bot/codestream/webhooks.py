"""Git webhooks, the triggers pushes come through (``GET /codestream/api/git-webhooks``, ``GET
…/git-webhooks/{id}``): which pipeline a webhook starts, and who created and last saved it (who
can fix it when its API token expired). The webhook's secrets (``refreshToken``, the Code Stream
API token it was saved with, and ``secretToken``) are not read: the model has no field for them,
so they cannot reach a log line, a message or an exception."""

from __future__ import annotations

from typing import Final

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


class WebhookApi(ApiSession):
    """The webhook operations of :class:`~bot.codestream.client.CodeStreamClient`."""

    async def list_git_webhooks(
        self, *, filter: str | None = None, top: int = 100, retry: bool = True
    ) -> list[GitWebhook]:
        """Git webhooks (``filter`` e.g. ``project eq 'Payments'``), one page of at most ``top``;
        ``retry=False``: one attempt (an alert must not wait on retries for its details)."""
        params = {"$top": str(min(top, MAX_WEBHOOKS))}
        if filter:
            params["$filter"] = filter
        exchange = Exchange("GET", f"{API}/git-webhooks", params)
        body = await self._get_json("list git webhooks", exchange, what="git webhooks", retry=retry)
        docs = DocumentPage.model_validate(body).ordered_documents()[:MAX_WEBHOOKS]
        return [GitWebhook.model_validate(doc) for doc in docs]

    async def get_git_webhook(self, webhook_id: str) -> GitWebhook:
        webhook_id = validate_server_id(webhook_id)
        body = await self._get_json(
            "get git webhook", Exchange("GET", f"{API}/git-webhooks/{webhook_id}"), what=f"git webhook {webhook_id}"
        )
        return GitWebhook.model_validate(body)
