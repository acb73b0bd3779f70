"""Simulated Gerrit listeners (``GET /gerrit-listeners/{project}/{name}``) and Docker registry
webhooks (``GET /registry-webhooks``): the triggers of Gerrit and Docker registry events. Like a
git webhook each holds an API token (the secret the bot must never show), and who created and
last saved it — who can fix it when a trigger failure says its token no longer works."""

from __future__ import annotations

import copy
import secrets
import uuid
from typing import Any

from aiohttp import web

from bot.simulator.cs_events import API_PREFIX, format_ts, now_micros
from bot.simulator.cs_middleware import json_error
from bot.simulator.cs_odata import ODataError, compile_filter, page_of

REGISTRY_FIELDS = frozenset({"id", "name", "project", "repoName", "pipeline"})


def saved_fields(doc_id: str, created_by: str, link: str) -> dict[str, Any]:
    """A trigger's id, link, and who created (and last saved) it, now."""
    now_us = now_micros()
    return {
        "id": doc_id,
        "createdBy": created_by,
        "updatedBy": created_by,
        "createdAt": format_ts(now_us),
        "updatedAt": format_ts(now_us),
        "_createTimeInMicros": now_us,
        "_updateTimeInMicros": now_us,
        "_link": link,
    }


class Triggers:
    """The Gerrit listeners and Docker registry webhooks of one simulator."""

    def __init__(self) -> None:
        self.listeners: dict[tuple[str, str], dict[str, Any]] = {}  # (project, name) -> listener
        self.registry_webhooks: dict[str, dict[str, Any]] = {}

    def add_listener(self, name: str, **fields: Any) -> dict[str, Any]:
        """A Gerrit listener. Modelled keys: project, createdBy, connected; others overlaid."""
        listener_id = str(fields.pop("id", None) or uuid.uuid4())
        project = fields.pop("project", "Payments")
        doc = {
            **saved_fields(
                listener_id,
                fields.pop("createdBy", "fritz@example.com"),
                f"{API_PREFIX}/gerrit-listeners/{listener_id}",
            ),
            "name": name,
            "project": project,
            "description": "",
            "endpoint": "gerrit-endpoint",
            "connected": fields.pop("connected", True),
            "apiToken": f"sim-gerrit-token-{secrets.token_hex(8)}",  # never shown by the bot
        }
        doc.update(fields)
        self.listeners[(project, name)] = doc
        return copy.deepcopy(doc)

    def add_registry_webhook(self, name: str, **fields: Any) -> dict[str, Any]:
        """A Docker registry webhook. Modelled keys: project, repoName, pipeline, createdBy."""
        webhook_id = str(fields.pop("id", None) or uuid.uuid4())
        doc = {
            **saved_fields(
                webhook_id, fields.pop("createdBy", "fritz@example.com"), f"{API_PREFIX}/registry-webhooks/{webhook_id}"
            ),
            "name": name,
            "project": fields.pop("project", "Payments"),
            "repoName": fields.pop("repoName", "payments/api"),
            "pipeline": fields.pop("pipeline", "payments-image-ci"),
            "serverType": "DOCKERHUB",
            "enabled": True,
            "refreshToken": f"sim-registry-token-{secrets.token_hex(8)}",  # never shown by the bot
            "secretToken": secrets.token_hex(8),
        }
        doc.update(fields)
        self.registry_webhooks[webhook_id] = doc
        return copy.deepcopy(doc)


def routes(triggers: Triggers) -> list[web.RouteDef]:
    async def listener(request: web.Request) -> web.Response:
        project, name = request.match_info["project"], request.match_info["name"]
        doc = triggers.listeners.get((project, name))
        if doc is None:
            return json_error(404, f"Gerrit listener {name} not found in project {project}")
        return web.json_response(copy.deepcopy(doc))

    async def registry_listing(request: web.Request) -> web.Response:
        q = request.query
        try:
            docs = list(triggers.registry_webhooks.values())
            matches = compile_filter(q.get("$filter", ""), REGISTRY_FIELDS)
            if matches is not None:
                docs = [d for d in docs if matches(d)]
            return web.json_response(page_of(docs, int(q.get("$top") or 25), int(q.get("$skip") or 0)))
        except (ValueError, ODataError):
            return json_error(400, "Invalid query")

    return [
        web.get(f"{API_PREFIX}/gerrit-listeners/{{project}}/{{name}}", listener),
        web.get(f"{API_PREFIX}/registry-webhooks", registry_listing),
    ]
