"""The pipeline execution a Code Stream event started, and what its status means."""

from __future__ import annotations

from typing import Any, Final

from pydantic import Field

from bot.codestream.fields import CodeStreamModel, LenientDict, LenientInt, LenientStr, LenientStrList

TERMINAL_STATUSES: Final = frozenset(
    {"CANCELED", "COMPLETED", "FAILED", "SKIPPED", "ROLLBACK_FAILED", "ROLLBACK_COMPLETED", "FAILED_CONTINUE"}
)
FAILED_STATUSES: Final = frozenset({"FAILED", "ROLLBACK_FAILED", "FAILED_CONTINUE", "CANCELED"})


class Execution(CodeStreamModel):
    id: LenientStr = None
    name: LenientStr = None
    index: LenientInt = None
    project: LenientStr = None
    status: LenientStr = None
    status_message: LenientStr = Field(None, alias="statusMessage")
    duration_micros: LenientInt = Field(None, alias="_durationInMicros")
    executed_by: LenientStr = Field(None, alias="_executedBy")
    pipeline_link: LenientStr = Field(None, alias="_pipelineLink")
    request_time_micros: LenientInt = Field(None, alias="_requestTimeInMicros")
    update_time_micros: LenientInt = Field(None, alias="_updateTimeInMicros")
    created_at: LenientStr = Field(None, alias="createdAt")
    updated_at: LenientStr = Field(None, alias="updatedAt")
    comments: LenientStr = None
    tags: LenientStrList = Field(default_factory=list)
    input: LenientDict = Field(default_factory=dict)
    output: LenientDict = Field(default_factory=dict)
    # ``{"input": name, "output": name}``: what the pipeline's author marked as important.
    starred: LenientDict = Field(default_factory=dict)
    # The workspace set-up (Git clone, container start): ``[{step, status, logs: [line…]}]``.
    workspace_results: list[Any] = Field(default_factory=list, alias="workspaceResults")
    link: LenientStr = Field(None, alias="_link")
    # Stages and their tasks stay raw (``StageExecution``/``TaskExecution`` in the spec, keyed by
    # name): they are read leniently, only to say what failed (bot.core.failures).
    stages: LenientDict = Field(default_factory=dict)
    stage_order: LenientStrList = Field(default_factory=list, alias="stageOrder")

    @property
    def is_terminal(self) -> bool:
        return (self.status or "").upper() in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        return self.duration_micros / 1_000_000 if self.duration_micros is not None else None
