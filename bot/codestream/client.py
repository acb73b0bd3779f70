"""An async, typed Code Stream API client. It knows nothing of Slack.

Reads (GET) are retried on connection errors, 429 and 502/503/504 with bounded exponential
backoff that honours ``Retry-After``. Resume/rerun (POST) is never retried once the request
may have reached the server: when its outcome is ambiguous, the client reads the event back
and reports whether a new execution started.

The operations live here; authenticated sending (and a POST sent at most once) is ``session``,
retrying and reading back ``retry``, what a resume or rerun did ``event_actions``, and building
a client with its pooled HTTP connection and login ``factory``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httpx

from bot.codestream.auth import TokenProvider
from bot.codestream.errors import BadResponse, CodeStreamError, DecisionIgnored
from bot.codestream.event_actions import ActionResult, ActionState, execution_changed, new_execution
from bot.codestream.events import (
    KIND_COLLECTION,
    KIND_LABEL,
    CodeStreamAction,
    Event,
    EventKind,
    parse_event,
)
from bot.codestream.execution_actions import (
    MAX_REASON,
    ExecutionAction,
    ExecutionActionRequest,
    ExecutionActionResult,
    took_effect,
)
from bot.codestream.executions import Execution
from bot.codestream.ids import validate_server_id
from bot.codestream.pages import About, DocumentPage, EventPage
from bot.codestream.pipelines import PipelineApi
from bot.codestream.retry import RetryPolicy, read_back
from bot.codestream.session import API, DEFAULT_API_VERSION, Exchange, RequestObserver, Unanswered
from bot.codestream.transport import DEFAULT_MAX_RESPONSE_BYTES, json_object
from bot.codestream.user_operations import (
    MAX_RESPONSE_MESSAGE,
    Decision,
    UserOperation,
    UserOpResponse,
    UserOpResult,
)

__all__ = [
    "MAX_DOCUMENTS",
    "ActionResult",
    "ActionState",
    "CodeStreamClient",
    "RequestObserver",
    "RetryPolicy",
    "execution_changed",
    "new_execution",
]

log = logging.getLogger(__name__)

#: Documents used from one list page at most (whatever the server sends).
MAX_DOCUMENTS: Final = 500


class CodeStreamClient(PipelineApi):
    """The Code Stream operations the bot uses, over an ``httpx.AsyncClient`` and a token
    provider the caller configured (:func:`bot.codestream.factory.create_client` builds both
    from plain arguments). :meth:`aclose` closes the ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        auth: TokenProvider,
        *,
        http: httpx.AsyncClient,
        api_version: str = DEFAULT_API_VERSION,
        retry: RetryPolicy | None = None,
        observer: RequestObserver | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        background: CodeStreamClient | None = None,
    ) -> None:
        """``background``: the same Code Stream over a connection pool of its own, for the bot's
        own work (watchers, follow-through, reconciler), so that people's slow actions holding
        every connection of this one never delay it. Closed with this client."""
        self.background: CodeStreamClient = background or self
        self.max_response_bytes = max_response_bytes
        self.max_documents = MAX_DOCUMENTS  # a test may lower it, like max_response_bytes
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.api_version = api_version
        self.retry = retry or RetryPolicy()
        self._http = http
        self._observer = observer

    def before_each_request(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Await ``hook`` before each HTTP request this client sends (the bot's acks-first turn)."""

        async def request_hook(_request: httpx.Request) -> None:
            await hook()

        self._http.event_hooks["request"].append(request_hook)

    # --- operations ------------------------------------------------------------------------

    async def about(self) -> About:
        body = await self._get_json("about", Exchange("GET", f"{API}/about"), what="about endpoint")
        return About.model_validate(body)

    async def list_events(
        self,
        kind: EventKind,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        skip: int | None = None,
    ) -> EventPage:
        params: dict[str, str] = {}
        if filter:
            params["$filter"] = filter
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        if skip is not None:
            params["$skip"] = str(skip)
        collection = KIND_COLLECTION[kind]
        body = await self._get_json(
            f"list {collection}", Exchange("GET", f"{API}/{collection}", params), what=f"{collection} list"
        )
        page = DocumentPage.model_validate(body)
        documents = page.ordered_documents()
        # A server that ignores $top must not make the bot parse (and alert on) a flood: use
        # what was asked for, and never more than max_documents.
        wanted = min(top, self.max_documents) if top is not None else self.max_documents
        if len(documents) > wanted:
            log.warning(
                "Code Stream answered with more documents than asked for; using the first ones",
                extra={"documents": len(documents), "used": wanted, "collection": collection},
            )
            documents = documents[:wanted]
        events = [parse_event(kind, doc) for doc in documents]
        return EventPage(
            kind=kind,
            events=events,
            count=page.count if page.count is not None else len(events),
            total_count=page.total_count,
        )

    async def iter_events(
        self,
        kind: EventKind,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[EventPage]:
        """Yield pages until the server has no more (callers stop early by breaking)."""
        skip = 0
        while True:
            page = await self.list_events(kind, filter=filter, orderby=orderby, top=page_size, skip=skip)
            if not page.events:
                return
            yield page
            skip += len(page.events)
            if page.total_count is not None and skip >= page.total_count:
                return

    async def get_event(self, kind: EventKind, event_id: str) -> Event:
        event_id = validate_server_id(event_id)
        collection = KIND_COLLECTION[kind]
        body = await self._get_json(
            f"get {collection}",
            Exchange("GET", f"{API}/{collection}/{event_id}"),
            what=f"{KIND_LABEL[kind]} event {event_id}",
        )
        return parse_event(kind, body)

    async def get_execution(self, execution_id: str, *, retry: bool = True) -> Execution:
        """``retry=False``: one attempt; callers that poll on their own schedule (the
        follow-through) back off themselves instead of multiplying requests in an outage."""
        execution_id = validate_server_id(execution_id)
        body = await self._get_json(
            "get execution",
            Exchange("GET", f"{API}/executions/{execution_id}"),
            what=f"execution {execution_id}",
            retry=retry,
        )
        return Execution.model_validate(body)

    async def resume(self, kind: EventKind, event_id: str) -> ActionResult:
        return await self.act(kind, event_id, "Resume")

    async def rerun(self, kind: EventKind, event_id: str) -> ActionResult:
        return await self.act(kind, event_id, "Rerun")

    async def act(
        self, kind: EventKind, event_id: str, action: CodeStreamAction, *, before: Event | None = None
    ) -> ActionResult:
        """Resume or rerun an event, exactly once.

        The event is read first: an unknown id fails with NotFound before anything is posted,
        and the read gives the execution to compare against if the POST's outcome is unclear.
        A caller that has just read the event may pass it as ``before``. Definite refusals (4xx)
        raise their typed error.
        """
        event_id = validate_server_id(event_id)
        if before is None:
            before = await self.get_event(kind, event_id)
        collection = KIND_COLLECTION[kind]
        exchange = Exchange("POST", f"{API}/{collection}/{event_id}", {"action": action})
        response = await self._post_once(
            f"{action.lower()} {collection}", exchange, what=f"{KIND_LABEL[kind]} event {event_id}"
        )
        if isinstance(response, Unanswered):
            if not response.sent:
                return ActionResult("not_started", before=before, error=response.error)
            return await self._reconcile(kind, before, response.error)
        try:
            after: Event | None = parse_event(kind, json_object(response))
        except CodeStreamError:
            # Accepted (2xx) but unreadable: the action happened; read the event for details,
            # but only a new execution may pass for the one this started.
            after = await self._read_back(kind, event_id)
            if after is not None and not new_execution(before, after):
                after = None
        return ActionResult("succeeded", before=before, event=after)

    async def act_on_execution(
        self, execution_id: str, action: ExecutionAction, *, reason: str, before: Execution
    ) -> ExecutionActionResult:
        """Pause, resume or cancel an execution, exactly once: the POST is never resent once it
        may have left. An ambiguous answer (timeout after sending, 5xx, 499) is followed by a few
        reads of the execution; its status says whether the action took effect, else the result
        is ``unknown`` and the caller keeps reading back. Definite refusals (4xx) raise."""
        execution_id = validate_server_id(execution_id)
        body = ExecutionActionRequest(reason=reason[:MAX_REASON]).model_dump()
        exchange = Exchange("POST", f"{API}/executions/{execution_id}", {"action": action}, body)
        response = await self._post_once(f"{action} execution", exchange, what=f"execution {execution_id}")
        if isinstance(response, Unanswered):
            if not response.sent:
                return ExecutionActionResult("not_started", before=before, error=response.error)
            return await self._read_execution_back(action, before, response.error)
        try:
            after: Execution | None = Execution.model_validate(json_object(response))
        except CodeStreamError:
            after = None  # accepted; the summary's next read shows the status
        return ExecutionActionResult("succeeded", before=before, execution=after)

    async def list_user_operations(
        self, *, filter: str | None = None, top: int = 100, max_pages: int = 10
    ) -> list[UserOperation]:
        """User operations (approvals), newest first; ``filter`` e.g. ``status eq 'ACTIVE'``.
        Pages through them ($skip) until a short page, ``totalCount`` or ``max_pages``: more than
        one page of pending approvals must not leave the older ones unposted."""
        found: list[UserOperation] = []
        for page in range(max_pages):
            params = {"$top": str(top), "$skip": str(page * top), "$orderby": "createdAt desc"}
            if filter:
                params["$filter"] = filter
            body = await self._get_json(
                "list user-operations", Exchange("GET", f"{API}/user-operations", params), what="user operations list"
            )
            listing = DocumentPage.model_validate(body)
            documents = listing.ordered_documents()[: min(top, self.max_documents)]
            found += [UserOperation.model_validate(doc) for doc in documents]
            total = listing.total_count
            if len(documents) < top or (total is not None and len(found) >= total):
                break
        return found

    async def get_user_operation(self, operation_id: str) -> UserOperation:
        operation_id = validate_server_id(operation_id)
        body = await self._get_json(
            "get user-operation",
            Exchange("GET", f"{API}/user-operations/{operation_id}"),
            what=f"approval {operation_id}",
        )
        return UserOperation.model_validate(body)

    async def respond_to_user_operation(
        self, operation_id: str, decision: Decision, *, message: str, before: UserOperation
    ) -> UserOpResult:
        """Approve or reject, exactly once: never resent once it may have left. An ambiguous
        answer is followed by reads: the operation showing ``decision`` means it arrived.
        Definite refusals (4xx, a 403 when the bot's account may not respond) raise."""
        operation_id = validate_server_id(operation_id)
        body = UserOpResponse(status=decision, response_message=message[:MAX_RESPONSE_MESSAGE])
        exchange = Exchange("POST", f"{API}/user-operations/{operation_id}", {}, body.model_dump(by_alias=True))
        response = await self._post_once("respond user-operation", exchange, what=f"approval {operation_id}")
        if isinstance(response, Unanswered):
            if not response.sent:
                return UserOpResult("not_started", before=before, error=response.error)
            return await self._read_user_operation_back(decision, before, response.error)
        answer: dict[str, Any] = {}
        try:
            answer = json_object(response)
            after: UserOperation | None = UserOperation.model_validate(answer)
        except CodeStreamError:
            after = None
        if after is not None and after.status == decision:
            return UserOpResult("succeeded", before=before, operation=after)
        # What Code Stream did is what it says when read, not what was asked: it answers 200 and
        # ignores a response from an account that may not decide ("... Ignoring the response.").
        said = answer.get("message") if isinstance(answer.get("message"), str) else None
        if said is not None and "ignoring" in said.lower():
            read: UserOperation | None = after
            with contextlib.suppress(CodeStreamError):
                read = await self.get_user_operation(operation_id)
            return UserOpResult("ignored", before=before, operation=read, error=DecisionIgnored(server_message=said))
        # No such words: it may only be slow to show the decision. Read it back; still open
        # after that means not known yet (the reconciler reads on), never "ignored" by guess.
        return await self._read_user_operation_back(
            decision, before, BadResponse("Code Stream answered, but the approval does not show the decision yet.")
        )

    # --- internals -------------------------------------------------------------------------

    async def _read_user_operation_back(
        self, decision: Decision, before: UserOperation, error: CodeStreamError
    ) -> UserOpResult:
        assert before.id is not None
        operation_id = before.id
        log.warning("ambiguous approval outcome, reading it back", extra={"error_class": type(error).__name__})

        async def read() -> UserOperation | None:
            try:
                return await self.get_user_operation(operation_id)
            except CodeStreamError:
                return None

        after = await read_back(self.retry, read, lambda op: op is not None and op.status == decision)
        if after is not None:
            return UserOpResult("succeeded", before=before, operation=after, error=error)
        return UserOpResult("unknown", before=before, error=error)

    async def _read_execution_back(
        self, action: ExecutionAction, before: Execution, error: CodeStreamError
    ) -> ExecutionActionResult:
        assert before.id is not None
        execution_id = before.id
        log.warning(
            "ambiguous %s outcome, reading the execution back",
            action,
            extra={"execution_id": execution_id, "error_class": type(error).__name__},
        )

        async def read() -> Execution | None:
            try:
                return await self.get_execution(execution_id)
            except CodeStreamError as exc:
                log.warning("read-back failed", extra={"execution_id": execution_id, "error_class": type(exc).__name__})
                return None

        after = await read_back(self.retry, read, lambda execution: took_effect(action, execution))
        if after is not None:
            return ExecutionActionResult("succeeded", before=before, execution=after, error=error)
        return ExecutionActionResult("unknown", before=before, error=error)

    async def _reconcile(self, kind: EventKind, before: Event, error: CodeStreamError) -> ActionResult:
        assert before.id is not None
        event_id = before.id
        log.warning(
            "ambiguous %s outcome, reading the event back",
            kind,
            extra={"event_id": event_id, "error_class": type(error).__name__},
        )

        def started(after: Event | None) -> bool:
            return after is not None and new_execution(before, after)

        after = await read_back(self.retry, lambda: self._read_back(kind, event_id), started)
        if after is not None:
            return ActionResult("succeeded", before=before, event=after, error=error, reconciled=True)
        # No new execution *yet*: a slow Code Stream may still apply it. Unknown, never "did not
        # start": the caller keeps reading back until its deadline.
        return ActionResult("unknown", before=before, error=error, reconciled=True)

    async def _read_back(self, kind: EventKind, event_id: str) -> Event | None:
        try:
            return await self.get_event(kind, event_id)
        except CodeStreamError as exc:
            log.warning("read-back failed", extra={"event_id": event_id, "error_class": type(exc).__name__})
            return None
