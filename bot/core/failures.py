"""What failed in an execution: the first failed stage and task, in the pipeline's order, and the
first lines of the error — so an alert says *why* without opening vRA.

Read leniently from the execution's raw ``stages`` (the spec's ``StageExecution`` →
``TaskExecution``): a shape this module does not understand gives no context, never an error.
Error text is passed through the log redactor (a task's output may carry a token) and bounded;
the renderers escape and clip it for Slack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from bot.codestream.executions import FAILED_STATUSES, Execution
from bot.core.logs import redact
from bot.core.run_inputs import MASK, is_secret

MAX_MESSAGE: Final = 4000  # characters of error text kept (before redaction and rendering)
MAX_NAME: Final = 200


#: Lines of a failed workspace step's log shown (its end: where it broke).
MAX_LOG_LINES: Final = 10
MAX_LOG_LINE: Final = 300


@dataclass(frozen=True)
class FailureContext:
    stage: str | None = None
    task: str | None = None
    message: str | None = None  # redacted, possibly multi-line
    logs: tuple[str, ...] = ()  # the workspace step's last log lines, redacted
    starred: tuple[tuple[str, str], ...] = ()  # (name, value): the starred input and output
    # A trigger failure: who can fix its webhook (who last saved it, who created it), as Code
    # Stream names them, and the Slack users they are when the bot can tell (mentions on).
    fixers: tuple[str, ...] = ()
    fixer_users: tuple[str, ...] = ()  # aligned with ``fixers``: "" where none is known
    webhook: str | None = None  # the git webhook's name, when the trigger failure's is known

    @property
    def where(self) -> str | None:
        """``Deploy › helm-upgrade``"""
        parts = [p for p in (self.stage, self.task) if p]
        return " › ".join(parts) if parts else None


# A canceled execution (or stage) was stopped by someone, not broken: it has no error to show.
_ERRORS: Final = FAILED_STATUSES - {"CANCELED"}


def _failed(status: Any) -> bool:
    return isinstance(status, str) and status.strip().upper() in _ERRORS


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _ordered(items: Mapping[str, Any], order: list[str] | Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Entries in the declared order (an order entry may name parallel items: ``"A,B"``), then
    any the order does not name."""
    names: list[str] = []
    for entry in order if isinstance(order, list) else []:
        if isinstance(entry, str):
            names += [name.strip() for name in entry.split(",") if name.strip()]
    names += [name for name in items if name not in names]
    for name in names:
        value = items.get(name)
        if isinstance(value, Mapping):
            yield name, value


def failure_context(execution: Execution) -> FailureContext | None:
    """Why a failed execution failed, with the values its author starred; None when it did not
    fail or says nothing useful."""
    if not _failed(execution.status):
        return None
    starred = starred_values(execution)
    found = _stage_context(execution)
    if found is None:
        return FailureContext(starred=starred) if starred else None
    return replace(found, starred=starred)


def starred_values(execution: Execution) -> tuple[tuple[str, str], ...]:
    """The starred input's and output's values (an image tag, an environment), redacted; one that
    looks secret is masked."""
    values: list[tuple[str, str]] = []
    for side, given in (("input", execution.input), ("output", execution.output)):
        name = execution.starred.get(side)
        if isinstance(name, str) and name in given and given[name] not in (None, ""):
            value = MASK if is_secret(name) else redact(str(given[name])[:MAX_NAME])
            values.append((name[:MAX_NAME], value))
    return tuple(values)


def _workspace_context(execution: Execution) -> FailureContext | None:
    """A failed workspace step (Git clone, container start): its name and last log lines."""
    for result in execution.workspace_results:
        if isinstance(result, Mapping) and _failed(result.get("status")):
            step = _text(result.get("step"), MAX_NAME) or "workspace"
            logs = result.get("logs")
            lines = (
                [str(line)[:MAX_LOG_LINE] for line in logs if isinstance(line, str)] if isinstance(logs, list) else []
            )
            tail = tuple(redact(line) for line in lines[-MAX_LOG_LINES:])
            return FailureContext(stage="Workspace", task=redact(step), logs=tail)
    return None


def _stage_context(execution: Execution) -> FailureContext | None:
    if not _failed(execution.status):
        return None
    workspace = _workspace_context(execution)
    if workspace is not None:
        return workspace
    for stage_key, stage in _ordered(execution.stages, execution.stage_order):
        if not _failed(stage.get("status")):
            continue
        stage_name = _text(stage.get("name"), MAX_NAME) or stage_key[:MAX_NAME]
        tasks = stage.get("tasks")
        for task_key, task in _ordered(tasks if isinstance(tasks, Mapping) else {}, stage.get("taskOrder")):
            if _failed(task.get("status")) and task.get("ignoreFailure") is not True:
                message = _text(task.get("failureMessage"), MAX_MESSAGE) or _text(
                    task.get("statusMessage"), MAX_MESSAGE
                )
                task_name = _text(task.get("name"), MAX_NAME) or task_key[:MAX_NAME]
                return _context(stage_name, task_name, message or _text(stage.get("statusMessage"), MAX_MESSAGE))
        return _context(stage_name, None, _text(stage.get("statusMessage"), MAX_MESSAGE))
    message = _text(execution.status_message, MAX_MESSAGE)
    return _context(None, None, message) if message else None


def _context(stage: str | None, task: str | None, message: str | None) -> FailureContext:
    return FailureContext(
        stage=redact(stage) if stage else None,
        task=redact(task) if task else None,
        message=redact(message) if message else None,
    )
