"""Pipeline executions: the compact stored record and its JSON rendering.

Records are small slotted objects rendered to the spec's Execution document on demand, so
benchmarks can hold tens of thousands of them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.simulator.cs_events import API_PREFIX, format_ts

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED", "SKIPPED", "ROLLBACK_COMPLETED", "ROLLBACK_FAILED"})
_STATUS_MESSAGES = {
    "RUNNING": "Execution Running.",
    "COMPLETED": "Execution Completed.",
    "FAILED": "Execution failed: stage Test, task unit failed.",
    "CANCELED": "Execution Canceled.",
}


# Every simulated pipeline: Build, Test, Deploy, with their tasks (Test runs two in parallel).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Build", ("compile",)),
    ("Test", ("unit,integration",)),
    ("Deploy", ("helm-upgrade",)),
)
DEFAULT_FAILURE = (
    "Test",
    "unit",
    "3 tests failed:\n"
    "  FAILED tests/test_invoice.py::test_rounding - AssertionError: 10.01 != 10.00\n"
    "  FAILED tests/test_invoice.py::test_totals - AssertionError\n"
    "  FAILED tests/test_tax.py::test_vat - KeyError: 'DE'",
)
_RUNNING = frozenset(
    {"RUNNING", "QUEUED", "WAITING", "PAUSED", "PAUSING", "CANCELING", "RESUMING", "NOT_STARTED", "STARTED"}
)


def _task(name: str, status: str, error: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "status": status, "type": "CI", "statusMessage": f"Task {status.lower()}."}
    if error is not None:
        doc["statusMessage"] = error.splitlines()[0]
        doc["failureMessage"] = error
    return doc


def render_stages(ex: Execution) -> dict[str, Any]:
    """``stages`` and ``stageOrder`` as the spec's StageExecution/TaskExecution: the first stage
    running while the execution runs; completed up to the failed task (``ex.failure``, else
    DEFAULT_FAILURE) and not started after it; all completed otherwise."""
    failed = (ex.failure or DEFAULT_FAILURE) if ex.status in ("FAILED", "ROLLBACK_FAILED") else None
    layout = [(stage, list(order)) for stage, order in STAGES]
    if failed is not None:
        known = dict(layout)
        if failed[0] not in known:
            layout.append((failed[0], [failed[1]]))
        elif failed[1] not in {n for entry in known[failed[0]] for n in entry.split(",")}:
            known[failed[0]].append(failed[1])
    running = ex.status in _RUNNING
    past_failure = False
    stages: dict[str, Any] = {}
    for index, (stage, order) in enumerate(layout):
        names = [name for entry in order for name in entry.split(",")]
        if running:
            status = "RUNNING" if index == 0 else "NOT_STARTED"
            tasks = {name: _task(name, status) for name in names}
        elif past_failure:
            status = "NOT_STARTED"
            tasks = {name: _task(name, status) for name in names}
        elif failed is not None and stage == failed[0]:
            status, past_failure = "FAILED", True
            tasks = {
                name: _task(name, "FAILED", failed[2]) if name == failed[1] else _task(name, "COMPLETED")
                for name in names
            }
        else:
            status = "COMPLETED"
            tasks = {name: _task(name, status) for name in names}
        stages[stage] = {
            "id": f"{ex.id}:{stage}",
            "name": stage,
            "status": status,
            "statusMessage": f"Stage {status.lower().replace('_', ' ')}.",
            "taskOrder": order,
            "tasks": tasks,
        }
    return {"stages": stages, "stageOrder": [stage for stage, _ in layout]}


def _url_text(server: Any) -> str:
    # serverURL may be a string, the spec's URI object, or absent.
    if isinstance(server, dict):
        return f"{server.get('scheme', 'https')}://{server.get('host', '')}"
    return server if isinstance(server, str) else ""


def execution_link(execution_id: str) -> str:
    return f"{API_PREFIX}/executions/{execution_id}"


@dataclass(slots=True)
class Execution:
    # Kept compact (rendered to JSON on demand) so benchmarks can hold 50k of them.
    id: str
    pipeline: str
    project: str
    index: int
    status: str
    created_us: int
    updated_us: int
    executed_by: str
    status_message: str | None = None
    final_status: str | None = None  # while progressing: the status it will reach
    finish_at: float | None = None  # while progressing: time.monotonic() deadline
    event: tuple[str, str] | None = None  # (kind name, event id) it was triggered by
    input: dict[str, Any] | None = None  # None: derived from the triggering event
    extra: dict[str, Any] | None = None  # caller-supplied JSON fields, overlaid last
    failure: tuple[str, str, str] | None = None  # (stage, task, error) when it fails; else DEFAULT_FAILURE
    reason: str | None = None  # the reason of the last pause/resume/cancel (ExecutionActionRequest)
    settling: str | None = None  # after PAUSING/CANCELING: the status the next read shows
    remaining: float | None = None  # while paused: seconds its progression still had to go


def render_execution(ex: Execution, event: Mapping[str, Any] | None, now_us: int) -> dict[str, Any]:
    """The Execution JSON document (spec definition `Execution`) for a stored record."""
    end = ex.updated_us if ex.status in TERMINAL else max(now_us, ex.updated_us)
    link = execution_link(ex.id)
    pipeline_id = uuid.uuid5(uuid.NAMESPACE_URL, f"codestream-sim/pipelines/{ex.pipeline}")
    doc: dict[str, Any] = {
        "id": ex.id,
        "name": f"{ex.pipeline}#{ex.index}",
        "description": "",
        "project": ex.project,
        "index": ex.index,
        "status": ex.status,
        "statusMessage": ex.status_message or _STATUS_MESSAGES.get(ex.status, f"Execution {ex.status}."),
        "comments": "",
        "reason": ex.reason or "",
        "input": copy.deepcopy(ex.input) if ex.input is not None else _input_from_event(ex, event),
        "output": {},
        **render_stages(ex),
        "tags": [],
        "notifications": [],
        "workspaceResults": [],
        "starred": {},
        "_inputMeta": {},
        "_outputMeta": {},
        "_nested": False,
        "_rollback": False,
        "_executedBy": ex.executed_by,
        "_pipelineLink": f"{API_PREFIX}/pipelines/{pipeline_id}",
        "_requestTimeInMicros": ex.created_us,
        "_durationInMicros": max(0, end - ex.created_us),
        "_createTimeInMicros": ex.created_us,
        "_updateTimeInMicros": ex.updated_us,
        "createdAt": format_ts(ex.created_us),
        "updatedAt": format_ts(ex.updated_us),
        "createdBy": ex.executed_by,
        "_createdBy": ex.executed_by,
        "updatedBy": ex.executed_by,
        "_updatedBy": ex.executed_by,
        "_link": link,
        "version": "v1",
    }
    if ex.extra:
        doc.update(copy.deepcopy(ex.extra))
    return doc


def _input_from_event(ex: Execution, d: Mapping[str, Any] | None) -> dict[str, Any]:
    # The inputs Code Stream injects into a triggered pipeline, from the event's fields.
    if ex.event is None or d is None:
        return {}
    kind = ex.event[0]
    if kind == "git":
        server = d.get("serverURL")
        return {
            "GIT_BRANCH_NAME": d.get("targetBranch", ""),
            "GIT_CHANGE_SUBJECT": d.get("subject", ""),
            "GIT_COMMIT_ID": d.get("commitId", ""),
            "GIT_EVENT_OWNER_NAME": d.get("owner", ""),
            "GIT_REPO_NAME": d.get("repo", ""),
            "GIT_SERVER_URL": _url_text(server),
        }
    if kind == "gerrit":
        props = d.get("properties")
        return {key: str(value) for key, value in props.items()} if isinstance(props, dict) else {}
    return {
        "DOCKER_IMAGE_NAME": d.get("imageName", ""),
        "DOCKER_IMAGE_TAG": d.get("tag", ""),
        "DOCKER_REPO_NAMESPACE": d.get("repoNamespace", ""),
    }
