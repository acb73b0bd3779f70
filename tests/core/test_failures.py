"""What failed, read from an execution's stages: the first failed stage and task in the pipeline's
order, with its error, redacted; any shape it does not understand gives no context, never an error."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.codestream.models import Execution
from bot.core.failures import FailureContext, failure_context


def execution(status: str = "FAILED", **fields: Any) -> Execution:
    return Execution.model_validate({"id": "e1", "status": status, **fields})


SPEC_SHAPED: dict[str, Any] = {
    "statusMessage": "Execution failed: stage Deploy, task helm-upgrade failed.",
    "stageOrder": ["Build", "Test", "Deploy"],
    "stages": {
        "Build": {"name": "Build", "status": "COMPLETED", "taskOrder": ["compile"], "tasks": {}},
        # Parallel tasks are one taskOrder entry: "lint,unit".
        "Test": {
            "name": "Test",
            "status": "COMPLETED",
            "taskOrder": ["lint,unit"],
            "tasks": {"lint": {"status": "COMPLETED"}, "unit": {"status": "COMPLETED"}},
        },
        "Deploy": {
            "name": "Deploy",
            "status": "FAILED",
            "statusMessage": "Stage failed.",
            "taskOrder": ["render", "helm-upgrade,smoke"],
            "tasks": {
                "render": {"name": "render", "status": "COMPLETED"},
                "smoke": {"name": "smoke", "status": "FAILED", "failureMessage": "later in the order"},
                "helm-upgrade": {
                    "name": "helm-upgrade",
                    "status": "FAILED",
                    "statusMessage": "Task failed.",
                    "failureMessage": "Error: UPGRADE FAILED: timed out\nline two\nline three",
                },
            },
        },
    },
}


def test_the_first_failed_task_in_the_pipelines_order_with_its_error() -> None:
    context = failure_context(execution(**SPEC_SHAPED))
    assert context == FailureContext("Deploy", "helm-upgrade", "Error: UPGRADE FAILED: timed out\nline two\nline three")
    assert context is not None and context.where == "Deploy › helm-upgrade"


def test_a_task_whose_failure_is_ignored_is_skipped_and_the_stage_speaks_without_one() -> None:
    stages = {
        "Test": {
            "status": "FAILED",
            "statusMessage": "2 of 3 tasks failed",
            "tasks": {"flaky": {"status": "FAILED", "ignoreFailure": True, "failureMessage": "ignored"}},
        }
    }
    assert failure_context(execution(stages=stages)) == FailureContext("Test", None, "2 of 3 tasks failed")


def test_without_stages_the_executions_own_message_is_the_context() -> None:
    context = failure_context(execution(statusMessage="Pipeline not found"))
    assert context == FailureContext(None, None, "Pipeline not found")
    assert failure_context(execution()) is None


def test_only_failures_have_a_context() -> None:
    for status in ("COMPLETED", "RUNNING", "CANCELED", None):
        assert failure_context(execution(status, **SPEC_SHAPED)) is None  # type: ignore[arg-type]


def test_secrets_in_an_error_are_redacted_like_the_logs() -> None:
    token = "xoxb-123456789012-abcdefABCDEF"
    message = f"curl -H 'Authorization: Bearer eyJabc.def.ghi' failed; SLACK_TOKEN={token}; password=hunter2hunter2"
    stages = {"Deploy": {"status": "FAILED", "tasks": {"notify": {"status": "FAILED", "failureMessage": message}}}}
    context = failure_context(execution(stages=stages))
    assert context is not None and context.message is not None
    assert token not in context.message and "eyJabc.def.ghi" not in context.message
    assert "[REDACTED]" in context.message and context.where == "Deploy › notify"


def test_huge_errors_and_names_are_bounded() -> None:
    stages = {"S" * 5000: {"status": "FAILED", "tasks": {"t": {"status": "FAILED", "failureMessage": "x" * 10**6}}}}
    context = failure_context(execution(stages=stages))
    assert context is not None and context.message is not None and context.stage is not None
    assert len(context.message) <= 4000 and len(context.stage) <= 200


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(stages=JSON, order=JSON, status=st.sampled_from(["FAILED", "ROLLBACK_FAILED", "failed", "COMPLETED"]))
def test_any_shape_of_stages_gives_a_context_or_none_never_an_error(stages: Any, order: Any, status: str) -> None:
    context = failure_context(execution(status, stages=stages, stageOrder=order))
    assert context is None or isinstance(context, FailureContext)


def test_a_failed_workspace_step_shows_the_end_of_its_log_redacted() -> None:
    logs = [f"step {n}" for n in range(30)] + [
        "Cloning into 'payments-api'...",
        "remote: Invalid username or password. token=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "fatal: Authentication failed for 'https://github.example.com/payments-api.git/'",
    ]
    failed = execution(workspaceResults=[{"step": "Git clone", "status": "FAILED", "logs": logs}])
    context = failure_context(failed)
    assert context is not None and context.where == "Workspace › Git clone"
    assert len(context.logs) == 10 and context.logs[-1].startswith("fatal: Authentication failed")
    assert not any("ghp_abcdefghijklmnopqrstuvwxyz0123456789" in line for line in context.logs)


def test_the_values_the_author_starred_come_with_the_failure_secrets_masked() -> None:
    failed = execution(
        input={"image_tag": "2.4.1", "env": "prod"},
        output={"deploy_token": "s3cr3t"},
        starred={"input": "image_tag", "output": "deploy_token"},
    )
    context = failure_context(failed)
    assert context is not None
    assert context.starred == (("image_tag", "2.4.1"), ("deploy_token", "••••••"))
