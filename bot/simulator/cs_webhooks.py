"""Simulated git webhooks (``GET /git-webhooks``, ``GET``/``PUT /git-webhooks/{id}``): the
trigger every push goes through. Each holds an API token (``refreshToken``) that can expire; a
push through a webhook whose token expired is a *trigger failure* — a git event with ``message``
set and no execution, as Code Stream records it — until the webhook is saved again with a new
token. Saving it sets ``updatedAt`` and ``updatedBy`` (the caller)."""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.simulator.cs_events import API_PREFIX, format_ts, now_micros
from bot.simulator.cs_middleware import json_error
from bot.simulator.cs_odata import ODataError, compile_filter, page_of
from bot.simulator.cs_seed import TRIGGER_FAILURE_MESSAGE
from bot.simulator.cs_state import SimState
from bot.simulator.cs_triggers import saved_fields

WEBHOOK_FIELDS = frozenset({"id", "name", "project", "repoName", "branchName", "pipeline", "serverWebhookId"})


class Webhooks:
    """The git webhooks of one simulator; pushes become git events of ``state``."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.docs: dict[str, dict[str, Any]] = {}
        self.expired: set[str] = set()  # webhook ids whose API token no longer works

    def add(self, name: str, **fields: Any) -> dict[str, Any]:
        """A webhook. Modelled keys: project, repoName, branchName, pipeline, createdBy (also its
        first updatedBy), expired (its token no longer works). Other keys are overlaid."""
        webhook_id = str(fields.pop("id", None) or uuid.uuid4())
        expired = bool(fields.pop("expired", False))
        created_by = fields.pop("createdBy", "fritz@example.com")
        doc: dict[str, Any] = {
            **saved_fields(webhook_id, created_by, f"{API_PREFIX}/git-webhooks/{webhook_id}"),
            "name": name,
            "description": "",
            "project": fields.pop("project", "Payments"),
            "repoName": fields.pop("repoName", "payments-api"),
            "branchName": fields.pop("branchName", "main"),
            "pipeline": fields.pop("pipeline", "payments-ci"),
            "serverType": "GITHUB",
            "eventCategory": "PUSH",
            "endpoint": "github-endpoint",
            "serverWebhookId": secrets.token_hex(16),
            "refreshToken": f"sim-webhook-token-{secrets.token_hex(8)}",  # the secret the bot must never show
            "secretToken": secrets.token_hex(8),
        }
        doc.update(fields)
        self.docs[webhook_id] = doc
        if expired:
            self.expired.add(webhook_id)
        return copy.deepcopy(doc)

    def expire(self, webhook_id: str) -> None:
        """Its API token expires (or is revoked): pushes through it stop starting the pipeline."""
        self.expired.add(webhook_id)

    def save(self, webhook_id: str, body: Any, saved_by: str) -> dict[str, Any]:
        """``PUT``: saved again (with a new API token when one is given): KeyError if unknown."""
        doc = self.docs[webhook_id]
        if isinstance(body, dict):
            doc.update({k: v for k, v in body.items() if k in WEBHOOK_FIELDS - {"id"} or k == "refreshToken"})
        now_us = now_micros()
        doc.update(updatedBy=saved_by, updatedAt=format_ts(now_us), _updateTimeInMicros=now_us)
        self.expired.discard(webhook_id)
        return copy.deepcopy(doc)

    def push(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        """A push through the webhook: a git event that started its pipeline, or, while its token
        is expired, a trigger failure (``message`` set, no execution)."""
        doc = self.docs[webhook_id]
        event: dict[str, Any] = {
            "project": doc["project"],
            "repo": doc["repoName"],
            "targetBranch": doc["branchName"],
            "pipeline": doc["pipeline"],
            "serverWebhookId": doc["serverWebhookId"],
            **fields,
        }
        if webhook_id in self.expired:
            event.update(executionStatus=None, message=TRIGGER_FAILURE_MESSAGE)
        else:
            event.setdefault("executionStatus", "RUNNING")
        return self.state.add_event("git", **event)

    def listing(self, filter_: str, top: int, skip: int) -> dict[str, Any]:
        docs = list(self.docs.values())
        matches = compile_filter(filter_, WEBHOOK_FIELDS)
        if matches is not None:
            docs = [d for d in docs if matches(d)]
        return page_of(docs, top, skip)


def routes(webhooks: Webhooks, subject: Callable[[web.Request], str | None]) -> list[web.RouteDef]:
    base = f"{API_PREFIX}/git-webhooks"

    async def listing(request: web.Request) -> web.Response:
        q = request.query
        try:
            return web.json_response(
                webhooks.listing(q.get("$filter", ""), int(q.get("$top") or 25), int(q.get("$skip") or 0))
            )
        except (ValueError, ODataError):
            return json_error(400, "Invalid query")

    async def get(request: web.Request) -> web.Response:
        webhook_id = request.match_info["id"]
        if webhook_id not in webhooks.docs:
            return json_error(404, f"Git webhook with id {webhook_id} not found")
        return web.json_response(copy.deepcopy(webhooks.docs[webhook_id]))

    async def save(request: web.Request) -> web.Response:
        webhook_id = request.match_info["id"]
        try:
            body = json.loads(await request.read() or b"{}")
            return web.json_response(webhooks.save(webhook_id, body, subject(request) or "unknown"))
        except ValueError:
            return json_error(400, "Malformed JSON body")
        except KeyError:
            return json_error(404, f"Git webhook with id {webhook_id} not found")

    return [web.get(base, listing), web.get(f"{base}/{{id}}", get), web.put(f"{base}/{{id}}", save)]
