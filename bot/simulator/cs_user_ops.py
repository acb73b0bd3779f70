"""Simulated user operations (manual approvals): created ACTIVE with approvers and an expiry,
decided once (APPROVED / REJECTED, case-insensitively, as responses may spell them), expired
on the first read after their expiry, canceled with their execution. A responder the operation
does not allow is answered 403, as Code Stream does for the bot's account."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from bot.simulator.cs_events import API_PREFIX, format_ts, now_micros
from bot.simulator.cs_odata import compile_filter, parse_orderby, sort_docs

USER_OP_FIELDS = frozenset(
    {"id", "name", "status", "project", "pipelineName", "executionId", "requestedBy", "createdAt", "updatedAt"}
)
DECISIONS = {"APPROVED": "APPROVED", "REJECTED": "REJECTED"}


class UserOpError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UserOperations:
    """The user operations of one simulator (CodeStreamSimulator exposes these helpers)."""

    def __init__(self) -> None:
        self.ops: dict[str, dict[str, Any]] = {}
        # Responders (the bearer token's subject) Code Stream refuses with 403, per operation.
        self.forbidden: set[str] = set()
        # Responders (or operations) whose responses Code Stream ignores, as its API documents
        # ("User operation response received from unauthorized user fritz. Ignoring the
        # response."): answered 200, the operation left ACTIVE.
        self.ignored: set[str] = set()

    def add(self, **fields: Any) -> dict[str, Any]:
        """A pending approval. Modelled keys: id, pipelineName, project, executionId, executionIndex,
        summary, description, requestedBy, approvers (e-mails), approverGroups, expires_in (seconds
        from now; default a day), status (default ACTIVE). Other keys are overlaid JSON fields."""
        now = now_micros()
        op_id = str(fields.pop("id", None) or uuid.uuid4())
        expires_in = float(fields.pop("expires_in", 86_400.0))
        execution_id = str(fields.pop("executionId", None) or uuid.uuid4())
        doc: dict[str, Any] = {
            "id": op_id,
            "name": fields.pop("name", "Approve deploy"),
            "summary": fields.pop("summary", "Deploy to production"),
            "description": fields.pop("description", "Approve the production deploy."),
            "status": fields.pop("status", "ACTIVE"),
            "approvers": fields.pop("approvers", ["alice@example.com"]),
            "approverGroups": fields.pop("approverGroups", []),
            "requestedBy": fields.pop("requestedBy", "fritz"),
            "project": fields.pop("project", "Default Project"),
            "pipelineName": fields.pop("pipelineName", "payments-deploy"),
            "executionId": execution_id,
            "executionLink": f"{API_PREFIX}/executions/{execution_id}",
            "executionIndex": fields.pop("executionIndex", 7),
            "expirationInDays": 1,
            "_requestedOnInMicros": now,
            "_expiresOnInMicros": now + int(expires_in * 1_000_000),
            "_createTimeInMicros": now,
            "_updateTimeInMicros": now,
            "createdAt": format_ts(now),
            "updatedAt": format_ts(now),
            "_link": f"{API_PREFIX}/user-operations/{op_id}",
            "sendemail": False,
            "version": "v1",
        }
        doc.update(fields)
        self.ops[op_id] = doc
        return copy.deepcopy(doc)

    def _expire(self) -> None:
        now = now_micros()
        for doc in self.ops.values():
            if str(doc.get("status", "")).upper() == "ACTIVE" and int(doc.get("_expiresOnInMicros") or 0) <= now:
                self._set(doc, "EXPIRED")

    @staticmethod
    def _set(doc: dict[str, Any], status: str, **fields: Any) -> None:
        now = now_micros()
        doc.update(status=status, _updateTimeInMicros=now, updatedAt=format_ts(now), **fields)

    def get(self, op_id: str) -> dict[str, Any]:
        self._expire()
        return copy.deepcopy(self.ops[op_id])

    def listing(self, filter_: str, orderby: str, top: int, skip: int) -> dict[str, Any]:
        self._expire()
        predicate = compile_filter(filter_, USER_OP_FIELDS)
        matching = [d for d in self.ops.values() if predicate is None or predicate(d)]
        docs = sort_docs(matching, parse_orderby(orderby, USER_OP_FIELDS))[skip : skip + top]
        links = [str(d["_link"]) for d in docs]
        return {
            "count": len(docs),
            "totalCount": len(matching),  # all that match, as Code Stream says
            "links": links,
            "documents": {str(d["_link"]): copy.deepcopy(d) for d in docs},
        }

    def respond(self, op_id: str, status: object, message: object, responder: str) -> dict[str, Any]:
        """KeyError for an unknown id; UserOpError (400/403) for a refused response."""
        self._expire()
        doc = self.ops[op_id]
        decision = DECISIONS.get(str(status).strip().upper()) if isinstance(status, str) else None
        if decision is None:
            raise UserOpError(400, f"Invalid status {status!r}")
        if responder in self.forbidden or op_id in self.forbidden:
            raise UserOpError(403, f"User operation response received from unauthorized user {responder}.")
        if str(doc.get("status", "")).upper() != "ACTIVE":
            raise UserOpError(400, f"User operation is already {str(doc.get('status')).upper()}.")
        if responder in self.ignored or op_id in self.ignored:
            message = f"User operation response received from unauthorized user {responder}. Ignoring the response."
            return {**copy.deepcopy(doc), "message": message}
        self._set(doc, decision, respondedBy=responder, responseMessage=message if isinstance(message, str) else "")
        return copy.deepcopy(doc)

    def decide(self, op_id: str, status: str, responder: str = "someone-in-vra", message: str = "") -> None:
        """Decide (or cancel) it directly, as a person in the vRA UI would."""
        self._set(self.ops[op_id], status, respondedBy=responder, responseMessage=message)
