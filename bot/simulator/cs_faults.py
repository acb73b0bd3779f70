"""Fault injection and request recording for the Code Stream simulator.

Faults are how tests reproduce the ugly parts of production: a gateway answering with an
HTML error page, a 30 s stall, a connection reset, a POST whose effect happened but whose
response never arrived. They are plain data; the server (codestream.py) decides how to act
on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Headers(dict[str, str]):
    """Request headers with case-insensitive lookup (HTTP header names are)."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__((k.lower(), v) for k, v in (items or {}).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it (faulted ones included)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # a Headers instance: lookups ignore case
    body: bytes
    at: float  # time.monotonic() when the request arrived

    def json(self) -> Any:
        """The body decoded as JSON (raises ValueError if it is not JSON)."""
        return json.loads(self.body)


@dataclass
class Fault:
    """A misbehaviour to apply to matching requests.

    `path` is a regex matched with `re.search` against the request path (no query string);
    the empty default matches every path, login endpoints included. Without `status`,
    `body`, `reset` or `garbage` the fault only delays (and adds `headers` to) the real
    response. A `body` without a `status` is answered with 200 — like an SSO proxy that
    returns its HTML login page with a success code.
    """

    method: str = "*"
    path: str = ""
    status: int | None = None
    body: str | bytes | dict[str, Any] | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    garbage: bool = False
    after_processing: bool = False
    # A slow Code Stream behind a proxy: the request is answered as the fault says (a 504, a
    # stall, a reset...) and its real effect happens this many seconds later, in the background.
    apply_after: float | None = None
    times: int | None = None
    # Let this many matching requests through untouched first (e.g. skip=1: the second read of an
    # execution is the slow one, not the first).
    skip: int = 0
    # How many matching requests were let through so far, for ``skip`` (maintained by the server).
    skipped: int = field(default=0, init=False, compare=False)
    # How many requests this fault has been applied to so far (maintained by the server).
    hits: int = field(default=0, init=False, compare=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._regex = re.compile(self.path)
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"invalid HTTP status {self.status}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.skip < 0:
            raise ValueError("skip must be >= 0")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    @property
    def replaces_response(self) -> bool:
        """True when the fault answers instead of (or on top of) the real handler."""
        return self.reset or self.garbage or self.status is not None or self.body is not None

    def matches(self, method: str, path: str) -> bool:
        if self.spent:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return self._regex.search(path) is not None


class FaultBook:
    """Active faults, first injected wins; a match consumes one of the fault's `times`."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.skipped < fault.skip:
                    fault.skipped += 1
                    continue
                fault.hits += 1
                return fault
        return None
