"""A small, deterministic sample data set (seed=True).

Ids are fixed so tests, the demo and docs can name them. Timestamps are relative to "now"
(minutes ago) so a watcher that looks at recent events finds them. The documents
deliberately reproduce the spec's contradictions — `timeStampInMicros` as a date string on
one event and int64 elsewhere; `serverURL` as a URI object, a string, or absent — plus a
field the spec does not know, because real servers send all of that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.simulator.cs_events import now_micros
from bot.simulator.cs_executions import execution_link
from bot.simulator.cs_state import SimState

# Git events
SAMPLE_COMPLETED_GIT_ID = "66f3c5d2-4603-4657-901a-0abbc9651193"  # payments-ci #5, COMPLETED
SAMPLE_COMPLETED_GIT_2_ID = "44fb84d4-23f9-4925-bd9f-2b83ae608665"  # storefront-ci #41, COMPLETED
SAMPLE_FAILED_GIT_ID = "8365ef3b-8bf3-48aa-bd5d-7113fcff827c"  # payments-ci #6, FAILED
SAMPLE_TRIGGER_FAILED_GIT_ID = "3546a1e7-2acb-43d6-9dc3-7a8ec29c4606"  # never ran: webhook error
# Other kinds
SAMPLE_FAILED_GERRIT_ID = "7735424b-3484-4389-9f00-fff1bafb5e00"  # platform-verify #88, FAILED
SAMPLE_FAILED_DOCKER_ID = "75eba230-9f71-41c6-babc-12e4d6ea0253"  # image-promote #15, FAILED
# Executions
SAMPLE_COMPLETED_EXECUTION_ID = "41601e37-ad73-499e-a36d-5982c7a8e5ac"
SAMPLE_COMPLETED_EXECUTION_2_ID = "23c7f2d7-c006-49ac-8bf9-032194e14d8b"
SAMPLE_FAILED_EXECUTION_ID = "08c20cb8-17b6-4d9c-9f15-c77cf4913bc5"
SAMPLE_FAILED_GERRIT_EXECUTION_ID = "0233049e-bafa-42eb-aef6-ad1a4231dfad"
SAMPLE_FAILED_DOCKER_EXECUTION_ID = "5d0c1a4e-7b2f-4c8e-9a61-3e5f7d9b1c24"

TRIGGER_FAILURE_MESSAGE = "Invalid Oauth Refresh token. Verify webhook configuration."

# The spec's URI definition, as a Java URI serialises it.
_SERVER_URI_OBJECT: dict[str, Any] = {
    "absolute": True,
    "authority": "github.example.com",
    "host": "github.example.com",
    "opaque": False,
    "path": "",
    "port": -1,
    "rawAuthority": "github.example.com",
    "rawPath": "",
    "rawSchemeSpecificPart": "//github.example.com",
    "scheme": "https",
    "schemeSpecificPart": "//github.example.com",
}


def _minutes_ago(now_us: int, minutes: float) -> int:
    return now_us - int(minutes * 60_000_000)


def _java_date(micros: int) -> str:
    # The spec's example format for timeStampInMicros: "2019-09-18T07:38:25.907+0000".
    dt = datetime.fromtimestamp(micros // 1_000_000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros // 1000 % 1000:03d}+0000"


# What the seeded payments-ci #6 failed with: a multi-line error, as Helm prints it.
HELM_FAILURE = (
    "Error: UPGRADE FAILED: timed out waiting for the condition\n"
    "helm upgrade payments-api ./chart --namespace payments --install --wait --timeout 5m0s\n"
    'deployment "payments-api" exceeded its progress deadline\n'
    "pod payments-api-7d9f8c6b5-x2lqp: CrashLoopBackOff (back-off 2m40s restarting failed container)"
)


def _execution(
    state: SimState, execution_id: str, pipeline: str, project: str, index: int, status: str,
    started_us: int, minutes: float, message: str | None = None,
    failure: tuple[str, str, str] | None = None,
) -> None:  # fmt: skip
    state.add_execution(
        failure=failure,
        id=execution_id,
        pipeline=pipeline,
        project=project,
        index=index,
        status=status,
        statusMessage=message,
        _executedBy="codestream",
        _createTimeInMicros=started_us,
        _updateTimeInMicros=started_us + int(minutes * 60_000_000),
    )


def _times(created_us: int, updated_us: int) -> dict[str, Any]:
    return {"_createTimeInMicros": created_us, "_updateTimeInMicros": updated_us}


def seed_sample_data(state: SimState) -> None:
    """The sample events and their executions, always in this order: the defaults they draw from
    the simulator's seeded random numbers depend on it."""
    now = now_micros()
    t = {m: _minutes_ago(now, m) for m in (120, 115, 90, 84, 30, 24, 20, 12, 9, 5)}
    _seed_passed_git(state, t)
    _seed_failed_git(state, t)
    _seed_other_kinds(state, t)


def _seed_passed_git(state: SimState, t: dict[int, int]) -> None:
    """Two git events whose pipelines passed (``t``: microseconds, by minutes ago)."""
    _execution(state, SAMPLE_COMPLETED_EXECUTION_ID, "payments-ci", "Payments", 5, "COMPLETED", t[120], 5)
    state.add_event(
        "git", id=SAMPLE_COMPLETED_GIT_ID, project="Payments", pipeline="payments-ci",
        repo="payments-api", targetBranch="main", owner="Priya Natarajan",
        subject="Add invoice CSV export", commitId="4f9c2b7e1d3a5c8e0b6f2a4d7c9e1b3a5d8f0c2e",
        httpURL="https://github.example.com/payments/payments-api",
        serverURL="https://github.example.com", timeStampInMicros=t[120],
        executionLink=execution_link(SAMPLE_COMPLETED_EXECUTION_ID), executionIndex=5,
        executionStatus="COMPLETED", **_times(t[120], t[115]),
    )  # fmt: skip

    _execution(state, SAMPLE_COMPLETED_EXECUTION_2_ID, "storefront-ci", "Storefront", 41, "COMPLETED", t[90], 6)
    state.add_event(
        "git", id=SAMPLE_COMPLETED_GIT_2_ID, project="Storefront", pipeline="storefront-ci",
        repo="storefront-web", targetBranch="main", owner="Jordan Lee",
        subject="Bump checkout SDK to 4.2", commitId="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        httpURL="https://github.example.com/storefront/storefront-web",
        serverURL=None,  # absent, as the spec allows
        timeStampInMicros=t[90], executionLink=execution_link(SAMPLE_COMPLETED_EXECUTION_2_ID),
        executionIndex=41, executionStatus="COMPLETED",
        eventSource="github-webhook",  # not in the 2019-10-17 spec: clients must ignore it
        **_times(t[90], t[84]),
    )  # fmt: skip


def _seed_failed_git(state: SimState, t: dict[int, int]) -> None:
    """A git event whose pipeline failed in Deploy, and one that never ran (a webhook error)."""
    _execution(
        state, SAMPLE_FAILED_EXECUTION_ID, "payments-ci", "Payments", 6, "FAILED", t[30], 6,
        "Execution failed: stage Deploy, task helm-upgrade failed.",
        failure=("Deploy", "helm-upgrade", HELM_FAILURE),
    )  # fmt: skip
    state.add_event(
        "git", id=SAMPLE_FAILED_GIT_ID, project="Payments", pipeline="payments-ci",
        repo="payments-api", targetBranch="main", owner="Alex Chen",
        subject="Fix rounding in invoice totals", commitId="9e107d9d372bb6826bd81d3542a419d6e277d4d2",
        httpURL="https://github.example.com/payments/payments-api",
        serverURL=_SERVER_URI_OBJECT,  # the URI object form
        timeStampInMicros=_java_date(t[30]),  # the date-string form from the spec's example
        executionLink=execution_link(SAMPLE_FAILED_EXECUTION_ID), executionIndex=6,
        executionStatus="FAILED", **_times(t[30], t[24]),
    )  # fmt: skip

    state.add_event(
        "git", id=SAMPLE_TRIGGER_FAILED_GIT_ID, project="Inventory", pipeline="inventory-ci",
        repo="inventory-service", targetBranch="release/2.3", owner="Maria Garcia",
        subject="Retry stock sync on 503", commitId="0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5",
        httpURL="https://github.example.com/inventory/inventory-service",
        serverURL="https://github.example.com", timeStampInMicros=t[20],
        executionStatus=None, message=TRIGGER_FAILURE_MESSAGE, **_times(t[20], t[20]),
    )  # fmt: skip


def _seed_other_kinds(state: SimState, t: dict[int, int]) -> None:
    """A failed Gerrit event and a failed Docker registry event."""
    _execution(
        state, SAMPLE_FAILED_GERRIT_EXECUTION_ID, "platform-verify", "Platform", 88, "FAILED", t[12], 2,
        "Execution failed: stage Verify, task terraform-plan failed.",
        failure=("Verify", "terraform-plan", "Error: Invalid provider version constraint\n  on versions.tf line 4"),
    )  # fmt: skip
    state.add_event(
        "gerrit", id=SAMPLE_FAILED_GERRIT_ID, project="Platform", pipeline="platform-verify",
        gerritProject="platform/infra-modules", branch="master", changeNumber=18823,
        patchSetNumber=4, subject="Pin terraform provider versions",
        owner="Sam Okafor <sam.okafor@example.com>", listener="gerrit-prod",
        trigger="infra-modules-verify", createdOn=t[12] // 1_000_000,
        executionLink=execution_link(SAMPLE_FAILED_GERRIT_EXECUTION_ID), executionIndex=88,
        executionStatus="FAILED", message="Execution failed", **_times(t[12], t[9]),
    )  # fmt: skip

    _execution(state, SAMPLE_FAILED_DOCKER_EXECUTION_ID, "image-promote", "Platform", 15, "FAILED", t[9], 3,
               "Execution failed: stage Promote, task Scan image: 2 critical vulnerabilities.",
               failure=("Promote", "Scan image", "2 critical vulnerabilities: CVE-2026-0001, CVE-2026-0042"),
               )  # fmt: skip
    state.add_event(
        "docker", id=SAMPLE_FAILED_DOCKER_ID, project="Platform", pipeline="image-promote",
        imageName="payments-api", repoNamespace="payments", repo="payments/payments-api",
        tag="1.42.0", owner="harbor-robot", timeStampInMicros=t[9],
        executionLink=execution_link(SAMPLE_FAILED_DOCKER_EXECUTION_ID), executionIndex=15,
        executionStatus="FAILED", **_times(t[9], t[5]),
    )  # fmt: skip
