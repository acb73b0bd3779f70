"""The models accept what real servers send: the spec's own examples, its contradictions,
unknown fields, nulls and values of surprising types."""

from __future__ import annotations

from typing import Any

import pytest

from bot.codestream.models import (
    DockerRegistryEvent,
    DocumentPage,
    Execution,
    GerritEvent,
    GitEvent,
    id_from_link,
    parse_event,
    parse_time,
)
from tests.spec import example_of

EXEC_ID = "08c20cb8-17b6-4d9c-9f15-c77cf4913bc5"


def test_git_event_example_from_spec_parses_with_its_contradictions() -> None:
    doc = example_of("GitEvent")
    # The spec's example is a date string where its schema says int64.
    assert isinstance(doc["timeStampInMicros"], str)
    event = GitEvent.model_validate(doc)
    assert event.subject == "Updating codestream-service.yaml"
    assert event.branch == "master"
    assert event.execution_index == 2
    assert event.execution_id == EXEC_ID
    assert event.commit_time is not None and event.commit_time.year == 2019
    assert event.short_commit == doc["commitId"][:7]


def test_gerrit_and_docker_examples_from_spec_parse() -> None:
    gerrit = GerritEvent.model_validate(example_of("GerritEvent"))
    assert gerrit.branch == "master"
    assert gerrit.repository == "TestGerritProject"
    assert gerrit.change_number == 18823
    docker = DockerRegistryEvent.model_validate(example_of("DockerRegistryEvent"))
    assert docker.branch == "latest"
    assert docker.commit_subject == "fedora:latest"
    assert docker.repository == "MyNamespace/MyRepository"


def test_execution_example_from_spec_parses() -> None:
    doc = example_of("Execution")
    doc.update({"status": "RUNNING", "index": 7, "_durationInMicros": 13495000})
    execution = Execution.model_validate(doc)
    assert execution.index == 7
    assert not execution.is_terminal
    assert execution.duration_seconds == pytest.approx(13.495)


def test_list_envelope_example_documents_parse_in_link_order() -> None:
    page = DocumentPage.model_validate(
        {
            "count": 2,
            "totalCount": 9,
            "links": ["/b", "/a"],
            "documents": {"/a": {"id": "a"}, "/b": {"id": "b"}, "/c": "not an object"},
        }
    )
    assert [d["id"] for d in page.ordered_documents()] == ["b", "a"]
    assert page.total_count == 9


@pytest.mark.parametrize(
    "server_url",
    [
        {"scheme": "https", "host": "git.example.com", "port": -1, "path": ""},
        "https://git.example.com",
        None,
        42,
        ["odd"],
    ],
    ids=["uri-object", "string", "null", "number", "list"],
)
def test_server_url_in_any_shape_never_fails(server_url: Any) -> None:
    event = GitEvent.model_validate({"id": "x", "serverURL": server_url})
    assert event.server_url in (None, "https://git.example.com")


def test_surprising_types_and_unknown_fields_are_tolerated() -> None:
    event = parse_event(
        "git",
        {
            "executionIndex": "not a number",
            "subject": {"nested": True},
            "targetBranch": 7,
            "timeStampInMicros": 1568625938000000,
            "brandNewField": {"x": [1, 2]},
            "message": None,
        },
    )
    assert event.execution_index is None
    assert event.commit_subject is None
    assert event.branch == "7"
    assert isinstance(event, GitEvent) and event.commit_time is not None
    assert event.model_extra == {"brandNewField": {"x": [1, 2]}}


@pytest.mark.parametrize(
    ("doc", "failed"),
    [
        ({"executionStatus": "FAILED", "executionLink": "/x"}, True),
        ({"executionStatus": "ROLLBACK_FAILED"}, True),
        ({"executionStatus": "CANCELED"}, True),
        ({"executionStatus": "COMPLETED", "executionLink": "/x"}, False),
        ({"message": "Invalid Oauth Refresh token. Verify webhook configuration."}, True),
        ({"message": "  "}, False),
        ({"executionStatus": "RUNNING", "executionLink": "/x", "message": "Execution started"}, False),
    ],
)
def test_failure_detection(doc: dict[str, Any], failed: bool) -> None:
    assert parse_event("git", doc).is_failure is failed


def test_times_and_links() -> None:
    assert parse_time("2019-09-16 09:25:38.065065+00") is not None
    assert parse_time("2019-09-18T07:38:25.907+0000") is not None
    assert parse_time(1568625938000000) == parse_time("2019-09-16T09:25:38+00:00")
    assert parse_time("yesterday") is None
    assert id_from_link(f"/codestream/api/executions/{EXEC_ID}") == EXEC_ID
    assert id_from_link("/codestream/api/executions/../../x") is None
    assert id_from_link(None) is None
