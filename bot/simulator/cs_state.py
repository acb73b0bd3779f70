"""In-memory Code Stream: events, executions and the rules that tie them together.

Everything here is synchronous and HTTP-free so tests can arrange data directly. Execution
status is computed lazily from the clock: an execution is RUNNING until its deadline, and
the next read after that (HTTP or helper) moves it — and its event — to the final status.
The executions themselves are ``cs_execution_state``; the events, and how each follows its
execution, are here.
"""

from __future__ import annotations

import copy
import uuid
from collections import OrderedDict
from typing import Any

from bot.simulator.cs_events import (
    KINDS,
    Kind,
    build_event,
    format_ts,
    resolve_kind,
)
from bot.simulator.cs_execution_state import ExecutionState, InvalidExecutionAction
from bot.simulator.cs_executions import Execution, execution_link
from bot.simulator.cs_odata import compile_filter, parse_orderby, sort_docs

__all__ = ["ACTIONS", "InvalidExecutionAction", "SimState"]  # the server reads the error from here

ACTIONS = ("Resume", "Rerun")  # exact spelling of the documented `action` values


class SimState(ExecutionState):
    """The data side of the simulator (CodeStreamSimulator adds the HTTP server): the events,
    on top of their executions (``ExecutionState``)."""

    def __init__(self, *, execution_duration: float = 2.0, final_status: str = "COMPLETED") -> None:
        super().__init__(execution_duration=execution_duration, final_status=final_status)
        # Per-event override for the NEXT execution created by resume/rerun (consumed).
        self.next_final_status: dict[str, str] = {}
        self._events: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KINDS}
        # Listing cache: sorted ids per (kind, $filter, $orderby), valid while the kind's
        # version is unchanged. Paging through 50k events then sorts once, not per page.
        self._versions: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._list_cache: OrderedDict[tuple[str, str, str], tuple[int, list[str]]] = OrderedDict()

    def _touch(self, kind: str) -> None:
        self._versions[kind] += 1

    # -- events ------------------------------------------------------------------------
    def add_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Store a new event (defaults per the spec, `fields` override, None = absent).

        If the event has an executionStatus but no executionLink, an execution with that
        status is created and linked (RUNNING ones progress like resumed ones). A given
        executionLink that names a known execution ties that execution to the event.
        """
        k = resolve_kind(kind)
        event_id = str(fields.pop("id", None) or uuid.uuid4())
        if event_id in self._events[k.name]:
            raise ValueError(f"{k.label} {event_id} already exists")
        fields.setdefault("executionStatus", "COMPLETED")
        doc = build_event(k, event_id, self._tick(), fields, self._rng)
        self._attach(k, doc)
        self._events[k.name][event_id] = doc
        self._touch(k.name)
        return copy.deepcopy(doc)

    def fail_burst(
        self, count: int, kind: str = "git", *, prefix: str = "storm", **fields: Any
    ) -> list[dict[str, Any]]:
        """A storm: ``count`` events of as many pipelines failing at once (a shared dependency
        broke), each execution failed in "Build › compile" with a multi-line error. ``fields``
        apply to every event (e.g. project, targetBranch)."""
        events = []
        for number in range(1, count + 1):
            doc = self.add_event(kind, executionStatus="FAILED", pipeline=f"{prefix}-{number:02d}", **fields)
            link = doc.get("executionLink")
            if isinstance(link, str):
                error = f"npm ERR! 404 Not Found: @shared/lib@2.0.0\nnpm ERR! in {prefix}-{number:02d}"
                self.set_failure(link.rsplit("/", 1)[-1], "Build", "compile", error)
            events.append(doc)
        return events

    def _attach(self, kind: Kind, doc: dict[str, Any], created_us: int | None = None) -> None:
        pipeline = str(doc.get("pipeline", ""))
        index = doc.get("executionIndex")
        if isinstance(index, int):
            self._last_index[pipeline] = max(self._last_index.get(pipeline, 0), index)
        link = doc.get("executionLink")
        if isinstance(link, str):
            known = self._executions.get(link.rsplit("/", 1)[-1])
            if known is not None:
                known.event = (kind.name, doc["id"])
            return
        status = doc.get("executionStatus")
        if status is None:
            return  # e.g. a trigger failure: the pipeline never ran
        ex = self._new_execution(
            pipeline,
            str(doc.get("project", "")),
            index if isinstance(index, int) else None,
            status=None if status == "RUNNING" else str(status),
            event=(kind.name, doc["id"]),
            created_us=created_us,
        )
        doc["executionLink"] = execution_link(ex.id)
        doc["executionIndex"] = ex.index

    def get_event(self, kind: str, event_id: str) -> dict[str, Any]:
        """A copy of the stored document; KeyError if unknown."""
        self._advance()
        return copy.deepcopy(self._events[resolve_kind(kind).name][event_id])

    def update_event(self, kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """Merge `fields` (None removes a field) and bump updatedAt unless given."""
        k = resolve_kind(kind)
        doc = self._events[k.name][event_id]
        if "_updateTimeInMicros" not in fields and "updatedAt" not in fields:
            self._bump(doc)
        for key, value in fields.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        self._touch(k.name)
        return copy.deepcopy(doc)

    def _bump(self, doc: dict[str, Any]) -> None:
        now = self._tick()
        doc["_updateTimeInMicros"] = now
        doc["updatedAt"] = format_ts(now)

    def generate(self, kind: str, n: int = 10_000, failed: int = 0) -> list[str]:
        """Bulk-create `n` events (one second apart, ending now), `failed` of them FAILED
        and spread evenly, each with an execution. Returns the ids, oldest first."""
        k = resolve_kind(kind)
        if not 0 <= failed <= n:
            raise ValueError("need 0 <= failed <= n")
        failed_at = {i * n // failed for i in range(failed)} if failed else set()
        start = self._tick() - n * 1_000_000
        store = self._events[k.name]
        ids: list[str] = []
        for i in range(n):
            ts = start + i * 1_000_000
            event_id = self._new_id()
            lane = i % 8
            fields: dict[str, Any] = {
                "project": "Bench",
                "pipeline": f"bench-{k.name}-{lane}",
                "executionStatus": "FAILED" if i in failed_at else "COMPLETED",
            }
            if k.name == "git":
                fields.update(repo=f"bench-repo-{lane}", subject=f"Bench commit {i}", timeStampInMicros=ts)
            elif k.name == "gerrit":
                fields.update(subject=f"Bench change {i}", changeNumber=100_000 + i)
            else:
                fields.update(imageName=f"bench-image-{lane}", tag=f"1.{i // 1000}.{i % 1000}")
            doc = build_event(k, event_id, ts, fields, self._rng)
            self._attach(k, doc, created_us=ts)
            store[event_id] = doc
            ids.append(event_id)
        self._touch(k.name)
        return ids

    # -- listing -----------------------------------------------------------------------
    def list_events(self, kind: str, filter_: str, orderby: str, top: int, skip: int) -> dict[str, Any]:
        """The spec's list shape. Raises ODataError for a bad $filter / $orderby."""
        self._advance()
        k = resolve_kind(kind)
        ids = self._sorted_ids(k, filter_, orderby)
        store = self._events[k.name]
        page = ids[skip : skip + top]
        links = [k.link(event_id) for event_id in page]
        return {
            "count": len(page),
            "totalCount": len(ids),
            "links": links,
            # Shallow copies: cheap enough for big pages, and callers can't corrupt the store.
            "documents": {link: dict(store[event_id]) for link, event_id in zip(links, page, strict=True)},
        }

    def _sorted_ids(self, k: Kind, filter_: str, orderby: str) -> list[str]:
        key = (k.name, filter_, orderby)
        version = self._versions[k.name]
        cached = self._list_cache.get(key)
        if cached is not None and cached[0] == version:
            self._list_cache.move_to_end(key)
            return cached[1]
        predicate = compile_filter(filter_, k.fields)
        keys = parse_orderby(orderby, k.fields)
        docs = self._events[k.name].values()
        matching = [d for d in docs if predicate(d)] if predicate is not None else list(docs)
        ids = [str(d["id"]) for d in sort_docs(matching, keys)]
        self._list_cache[key] = (version, ids)
        if len(self._list_cache) > 32:
            self._list_cache.popitem(last=False)
        return ids

    # -- actions -----------------------------------------------------------------------
    def act_on_event(self, kind: str, event_id: str, action: str, executed_by: str) -> dict[str, Any]:
        """Resume / Rerun: start a new execution of the event's pipeline and link it.

        KeyError for an unknown event, ValueError for an action other than Resume/Rerun.
        """
        if action not in ACTIONS:
            raise ValueError("Invalid action")
        self._advance()
        k = resolve_kind(kind)
        doc = self._events[k.name][event_id]
        ex = self._new_execution(
            str(doc.get("pipeline", "")),
            str(doc.get("project", "")),
            None,
            status=None,
            event=(k.name, event_id),
            executed_by=executed_by,
            final_status=self.next_final_status.pop(event_id, None),
        )
        doc["executionLink"] = execution_link(ex.id)
        doc["executionIndex"] = ex.index
        doc["executionStatus"] = ex.status
        doc.pop("message", None)
        self._bump(doc)
        self._touch(k.name)
        return copy.deepcopy(doc)

    # -- events follow their executions ----------------------------------------------------
    def _event_follows(self, ex: Execution) -> None:
        if ex.event is None:
            return
        kind, event_id = ex.event
        doc = self._events[kind].get(event_id)
        # Only while the event still points at this execution: a later rerun owns it then.
        if doc is not None and doc.get("executionLink") == execution_link(ex.id):
            doc["executionStatus"] = ex.status
            self._bump(doc)
            self._touch(kind)

    def _event_of(self, ex: Execution) -> dict[str, Any] | None:
        return self._events[ex.event[0]].get(ex.event[1]) if ex.event is not None else None
