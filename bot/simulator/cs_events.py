"""Event kinds and the JSON documents Code Stream returns for them.

Field names follow the 2019-10-17 spec definitions GitEvent, GerritEvent and
DockerRegistryEvent. Documents are plain dicts: the simulator speaks JSON only and must be
able to hold whatever shape a test wants to throw at a client (odd types, extra fields).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

API_PREFIX = "/codestream/api"

_COMMON = frozenset(
    {
        "_createTimeInMicros", "_createdBy", "_link", "_updateTimeInMicros", "_updatedBy",
        "createdAt", "createdBy", "description", "executionIndex", "executionLink",
        "executionStatus", "id", "message", "name", "owner", "pipeline", "project",
        "updatedAt", "updatedBy", "version",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Kind:
    name: str  # "git" | "gerrit" | "docker": what the simulator's helpers take
    segment: str  # URL path segment, e.g. "git-events"
    label: str  # used in 404 messages: "Git Event with id ... not found"
    fields: frozenset[str]  # the spec's properties: what $filter / $orderby may reference

    def link(self, event_id: str) -> str:
        return f"{API_PREFIX}/{self.segment}/{event_id}"


KINDS: dict[str, Kind] = {
    "git": Kind(
        "git",
        "git-events",
        "Git Event",
        _COMMON
        | {"commitId", "httpURL", "repo", "serverURL", "serverWebhookId", "subject",
           "targetBranch", "timeStampInMicros"},
    ),
    "gerrit": Kind(
        "gerrit",
        "gerrit-events",
        "Gerrit Event",
        _COMMON
        | {"actionTaken", "branch", "changeNumber", "createdOn", "gerritProject", "listener",
           "patchSetNumber", "properties", "subject", "trigger", "triggerType", "type"},
    ),
    "docker": Kind(
        "docker",
        "registry-events",
        "Docker Registry Event",
        _COMMON | {"imageName", "repo", "repoNamespace", "tag", "timeStampInMicros"},
    ),
}  # fmt: skip

_ALIASES = {"registry": "docker", **{k.segment: k.name for k in KINDS.values()}}
KIND_BY_SEGMENT = {k.segment: k for k in KINDS.values()}


def resolve_kind(kind: str) -> Kind:
    """'git' / 'gerrit' / 'docker' (also 'registry' or a URL segment like 'git-events')."""
    try:
        return KINDS[_ALIASES.get(kind, kind)]
    except KeyError:
        raise ValueError(f"unknown event kind {kind!r}; use git, gerrit or docker") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_micros() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def format_ts(micros: int) -> str:
    """Microseconds since epoch -> '2019-09-16 09:25:38.065065+00' (the spec's format)."""
    # timedelta arithmetic is exact; float division would round the microseconds.
    return (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


def random_hex(rng: random.Random, chars: int) -> str:
    return f"{rng.getrandbits(chars * 4):0{chars}x}"


def _git_defaults(rng: random.Random, now_us: int) -> dict[str, Any]:
    return {
        "description": "Git push event",
        "project": "Default Project",
        "pipeline": "demo-pipeline",
        "repo": "demo-repo",
        "owner": "Demo User",
        "subject": "Update README.md",
        "targetBranch": "main",
        "commitId": random_hex(rng, 40),
        "serverURL": "https://github.example.com",
        "serverWebhookId": random_hex(rng, 32),
        "timeStampInMicros": now_us,
    }


def _gerrit_defaults(rng: random.Random, now_us: int) -> dict[str, Any]:
    return {
        "description": "Gerrit patchset-created event",
        "project": "Default Project",
        "pipeline": "demo-gerrit-pipeline",
        "owner": "Demo User <demo.user@example.com>",
        "subject": "Demo change",
        "branch": "master",
        "changeNumber": 10000 + rng.randrange(90000),
        "patchSetNumber": 1,
        "gerritProject": "demo/project",
        "listener": "gerrit-listener",
        "trigger": "gerrit-trigger",
        "triggerType": "AUTOMATIC",
        "type": "patchset-created",
        "createdOn": now_us // 1_000_000,
    }


def _docker_defaults(rng: random.Random, now_us: int) -> dict[str, Any]:
    return {
        "description": "Docker registry image push",
        "project": "Default Project",
        "pipeline": "demo-image-pipeline",
        "owner": "registry-bot",
        "imageName": "demo-app",
        "tag": f"1.0.{rng.randrange(1000)}",
        "repoNamespace": "demo",
        "timeStampInMicros": now_us,
    }


_DEFAULTS = {"git": _git_defaults, "gerrit": _gerrit_defaults, "docker": _docker_defaults}


def _derive(kind: Kind, doc: dict[str, Any]) -> None:
    """Fill fields that depend on others (only where the caller gave no value)."""
    if kind.name == "git":
        server = doc.get("serverURL")
        base = server if isinstance(server, str) else "https://github.example.com"
        doc.setdefault("httpURL", f"{base}/example/{doc.get('repo', 'repo')}")
        doc.setdefault("name", f"{doc.get('repo')}-{doc.get('targetBranch')}-{str(doc.get('commitId'))[:7]}")
    elif kind.name == "gerrit":
        doc.setdefault("name", f"{doc.get('gerritProject')}~{doc.get('changeNumber')},{doc.get('patchSetNumber')}")
        doc.setdefault(
            "properties",
            {
                "GERRIT_BRANCH": str(doc.get("branch")),
                "GERRIT_CHANGE_NUMBER": str(doc.get("changeNumber")),
                "GERRIT_PATCHSET_NUMBER": str(doc.get("patchSetNumber")),
                "GERRIT_PROJECT": str(doc.get("gerritProject")),
                "GERRIT_CHANGE_SUBJECT": str(doc.get("subject")),
                "GERRIT_EVENT_TYPE": str(doc.get("type")),
            },
        )
    else:
        doc.setdefault("repo", f"{doc.get('repoNamespace')}/{doc.get('imageName')}")
        doc.setdefault("name", f"{doc.get('repo')}:{doc.get('tag')}")


def build_event(kind: Kind, event_id: str, now_us: int, fields: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A complete event document: defaults, then `fields` (None removes a field), then
    derived fields and timestamps. Execution fields are the caller's business."""
    doc: dict[str, Any] = {"id": event_id, **_DEFAULTS[kind.name](rng, now_us)}
    doc.update(fields)
    _derive(kind, doc)  # setdefault-based: an explicit None from the caller is kept ...
    created = doc.get("_createTimeInMicros")
    created = created if isinstance(created, int) else now_us
    updated = doc.get("_updateTimeInMicros")
    updated = updated if isinstance(updated, int) else max(now_us, created)
    doc.setdefault("_createTimeInMicros", created)
    doc.setdefault("_updateTimeInMicros", updated)
    created_at = format_ts(created)
    doc.setdefault("createdAt", created_at)
    doc.setdefault("updatedAt", created_at if updated == created else format_ts(updated))
    for key in ("createdBy", "_createdBy", "updatedBy", "_updatedBy"):
        doc.setdefault(key, "codestream")
    doc.setdefault("_link", kind.link(event_id))
    doc.setdefault("version", "v1")
    # ... and removed here, so `field=None` always means "absent from the document".
    if None in doc.values():
        return {k: v for k, v in doc.items() if v is not None}
    return doc
