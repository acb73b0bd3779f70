"""Where a failure alert goes: the first matching ``routes:`` rule of BOT_CONFIG (a channel, or
``drop``), else the oldest matching subscription a channel added itself (``/codestream
subscribe``; the watcher hands them over once a cycle), else the fallback channel
(BOT_ALERT_CHANNEL), else nowhere. The file comes first so that an operator can still route or
silence a source everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final

from bot.codestream.models import EVENT_KINDS, Event, EventKind
from bot.core.fileconfig import MATCH_FIELDS, FileConfig, Match, Route
from bot.store import SubscriptionFilters


@dataclass(frozen=True)
class RouteDecision:
    channel: str | None  # None: no alert
    mention: str | None
    rule: int | None  # index into routes; None for a subscription, the fallback or no match
    dropped: bool  # a ``drop: true`` rule matched
    subscription: int | None = None  # the subscription that matched (after no rule did)

    @property
    def alerts(self) -> bool:
        return self.channel is not None and not self.dropped


def _event_values(event: Event) -> dict[str, str]:
    # A missing value is "" so that a "*" pattern matches it but no literal does.
    return {
        "kind": event.kind,
        "project": event.project or "",
        "pipeline": event.pipeline or "",
        "repo": event.repository or "",
        "branch": event.branch or "",
    }


def _matches(match: Match, values: dict[str, str]) -> bool:
    for name in MATCH_FIELDS:
        patterns: tuple[str, ...] | None = getattr(match, name)
        if patterns is not None and not any(fnmatchcase(values[name], p) for p in patterns):
            return False
    return True


@dataclass(frozen=True)
class StoredRoute:
    """A route a channel added itself (a subscription): every filter that is set must match.
    ``project`` and ``kind`` are exact; ``pipeline``, ``repo`` and ``branch`` are globs. A kind
    that is not an event kind (``approval``) matches no failure event."""

    id: int
    channel: str
    filters: SubscriptionFilters = field(default_factory=SubscriptionFilters)

    @property
    def mention(self) -> str | None:
        return self.filters.mention

    def matches(self, values: dict[str, str]) -> bool:
        f = self.filters
        if f.kind is not None and values["kind"] != f.kind:
            return False
        if f.project is not None and values["project"] != f.project:
            return False
        globs = (("pipeline", f.pipeline), ("repo", f.repo), ("branch", f.branch))
        return all(pattern is None or fnmatchcase(values[name], pattern) for name, pattern in globs)

    def may_match(self, kind: EventKind) -> bool:
        return self.filters.kind is None or self.filters.kind == kind

    def describe(self) -> str:
        values = self.filters.model_dump(exclude={"mention"}, exclude_none=True)
        return " ".join(f"{name}={value}" for name, value in values.items()) or "any failure"


_WILDCARDS: Final = frozenset("*?[")


def _narrows(pattern: str | None) -> bool:
    """Whether a glob filter narrows: one of only ``*`` and ``?`` (``*``, ``?*``) matches every
    value, or every non-empty one, so it weighs nothing."""
    return pattern is not None and not set(pattern) <= {"*", "?"}


def specificity(route: StoredRoute) -> int:
    """How many filters narrow the subscription: kind and project always do; a glob of only
    ``*`` does not, so `pipeline:* repo:* branch:*` weighs nothing."""
    f = route.filters
    exact = sum(v is not None for v in (f.kind, f.project))
    return exact + sum(_narrows(v) for v in (f.pipeline, f.repo, f.branch))


def _order(route: StoredRoute) -> tuple[int, int]:
    return -specificity(route), route.id


def by_specificity(stored: Sequence[StoredRoute]) -> tuple[StoredRoute, ...]:
    """The order subscriptions are tried in: the one whose filters narrow more first, so
    #payments' `project:Payments` gets Payments' failures even when #general subscribed to
    everything earlier; among equals, the oldest (the lowest number) keeps them. One alert per
    failure: the other channel is told when it subscribes (``overlap``)."""
    return tuple(sorted(stored, key=_order))


def _globs_disjoint(a: str, b: str) -> bool:
    """Whether no value can match both globs (False when unsure): a literal is tried against the
    other; otherwise their fixed starts, or their fixed ends, must agree."""
    if not (_WILDCARDS & set(a)):
        return not fnmatchcase(a, b)
    if not (_WILDCARDS & set(b)):
        return not fnmatchcase(b, a)

    def start(p: str) -> str:
        return p[: min((p.index(c) for c in _WILDCARDS if c in p), default=len(p))]

    def end(p: str) -> str | None:
        last = max(p.rindex(c) for c in _WILDCARDS if c in p)
        return None if "[" in p[last:] or "]" in p[last:] else p[last + 1 :]

    sa, sb = start(a), start(b)
    if not (sa.startswith(sb) or sb.startswith(sa)):
        return True
    ea, eb = end(a), end(b)
    return ea is not None and eb is not None and not (ea.endswith(eb) or eb.endswith(ea))


def overlap(a: StoredRoute, b: StoredRoute) -> StoredRoute | None:
    """When some failure could match both subscriptions, the one that gets it (tried first);
    None when they share none."""
    f, g = a.filters, b.filters
    for x, y in ((f.kind, g.kind), (f.project, g.project)):
        if x is not None and y is not None and x != y:
            return None
    for x, y in ((f.pipeline, g.pipeline), (f.repo, g.repo), (f.branch, g.branch)):
        if x is not None and y is not None and _globs_disjoint(x, y):
            return None
    return min((a, b), key=_order)


def describe_match(match: Match) -> str:
    parts: list[str] = []
    for name in MATCH_FIELDS:
        patterns: tuple[str, ...] | None = getattr(match, name)
        if patterns is not None:
            parts.append(f"{name}={'|'.join(patterns)}")
    return " ".join(parts) or "any failure"


def _catches_all(match: Match, kind: EventKind) -> bool:
    """Whether a rule with this match takes every failure of ``kind``."""
    if match.kind is not None and kind not in match.kind:
        return False
    return all(getattr(match, name) is None for name in MATCH_FIELDS if name != "kind")


class Router:
    def __init__(
        self, routes: Sequence[Route] = (), fallback: str | None = None, stored: Sequence[StoredRoute] = ()
    ) -> None:
        self.routes = tuple(routes)
        self.fallback = fallback or None
        self.stored = by_specificity(stored)

    def use_stored(self, stored: Sequence[StoredRoute]) -> None:
        """The subscriptions to route by from now on (the watcher reads them once a cycle)."""
        self.stored = by_specificity(stored)

    @classmethod
    def from_config(cls, file_config: FileConfig, fallback: str | None) -> Router:
        return cls(file_config.routes, fallback)

    def route(self, event: Event) -> RouteDecision:
        return self._route(_event_values(event))

    def route_approval(self, project: str | None, pipeline: str | None) -> RouteDecision:
        """Where a Code Stream approval's request goes: the same rules, with kind ``approval``
        (a rule naming other kinds does not match; one naming no kind does)."""
        values = {"kind": "approval", "project": project or "", "pipeline": pipeline or "", "repo": "", "branch": ""}
        return self._route(values)

    def _route(self, values: dict[str, str]) -> RouteDecision:
        for index, rule in enumerate(self.routes):
            if _matches(rule.match, values):
                if rule.drop:
                    return RouteDecision(None, None, index, dropped=True)
                return RouteDecision(rule.channel, rule.mention, index, dropped=False)
        for stored in self.stored:
            if stored.matches(values):
                return RouteDecision(stored.channel, stored.mention, None, dropped=False, subscription=stored.id)
        return RouteDecision(self.fallback, None, None, dropped=False)

    @property
    def configured(self) -> bool:
        """Some failure can produce an alert (a channel rule, a subscription or a fallback)."""
        return self.fallback is not None or any(not r.drop for r in self.routes) or bool(self.stored)

    def open_to_stored(self) -> bool:
        """Whether some failure gets past the file's routes, so that a subscription can route it
        (not when rules take every failure of every kind, e.g. one ``drop: true`` matching all)."""
        return any(not any(_catches_all(r.match, kind) for r in self.routes) for kind in EVENT_KINDS)

    def shadowing_rule(self, stored: StoredRoute) -> int | None:
        """The first file rule that takes every failure ``stored`` could match before it does
        (so it would never receive one), if any."""
        kinds = [k for k in EVENT_KINDS if stored.may_match(k)]
        if not kinds or stored.filters.kind not in (None, *EVENT_KINDS):
            return None
        return next((i for i, r in enumerate(self.routes) if all(_catches_all(r.match, k) for k in kinds)), None)

    def rules_to(self, channel: str) -> list[tuple[int, Route]]:
        """The file's rules that alert in ``channel``, with their index."""
        return [(index, rule) for index, rule in enumerate(self.routes) if rule.channel == channel and not rule.drop]

    def may_alert(self, kind: EventKind) -> bool:
        """Whether any failure of ``kind`` can reach a channel: the watcher does not poll kinds
        that can only be dropped."""
        for rule in self.routes:
            kinds = rule.match.kind
            if kinds is not None and kind not in kinds:
                continue
            if not rule.drop:
                return True
            if _catches_all(rule.match, kind):
                return False  # drops every failure of this kind
        return any(s.may_match(kind) for s in self.stored) or self.fallback is not None

    def may_route_approvals(self) -> bool:
        """Whether some approval request could reach a channel (the approvals watcher idles,
        without a Code Stream read, while none can): a file rule for kind ``approval`` or for
        any kind, a subscription for it or for anything, or the fallback."""
        for rule in self.routes:
            kinds = rule.match.kind
            if kinds is not None and "approval" not in kinds:
                continue
            if not rule.drop:
                return True
            if all(getattr(rule.match, name) is None for name in MATCH_FIELDS if name != "kind"):
                return False  # drops every approval request
        return self.fallback is not None or any(s.filters.kind in (None, "approval") for s in self.stored)

    def kinds(self) -> tuple[EventKind, ...]:
        return tuple(k for k in EVENT_KINDS if self.may_alert(k))

    def describe(self) -> list[str]:
        """The routing table, one line per rule, for ``codestream-bot check``."""
        lines: list[str] = []
        for index, rule in enumerate(self.routes):
            target = "drop (no alert)" if rule.drop else f"channel {rule.channel}"
            if rule.mention:
                target += f", mention {rule.mention}"
            lines.append(f"routes[{index}]: {describe_match(rule.match)} -> {target}")
        lines.extend(describe_stored(self.stored))
        if self.fallback:
            lines.append(f"otherwise: channel {self.fallback} (BOT_ALERT_CHANNEL)")
        else:
            lines.append("otherwise: no alert (BOT_ALERT_CHANNEL is not set)")
        skipped = [k for k in EVENT_KINDS if not self.may_alert(k)]
        if skipped:
            lines.append(f"not polled (no rule can alert on them): {', '.join(skipped)}")
        return lines


def describe_stored(stored: Sequence[StoredRoute]) -> list[str]:
    """The subscriptions, one line each, as ``check`` prints them after the file's routes."""
    lines: list[str] = []
    for route in stored:
        target = f"channel {route.channel}" + (f", mention {route.mention}" if route.mention else "")
        lines.append(f"subscription #{route.id}: {route.describe()} -> {target}")
    return lines
