"""Where a failure alert goes: the first matching ``routes:`` rule of BOT_CONFIG, else the
fallback channel (BOT_ALERT_CHANNEL), else nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.codestream.models import EVENT_KINDS, Event, EventKind
from bot.core.fileconfig import MATCH_FIELDS, FileConfig, Match, Route


@dataclass(frozen=True)
class RouteDecision:
    channel: str | None  # None: no alert
    mention: str | None
    rule: int | None  # index into routes; None for the fallback or no match
    dropped: bool  # a ``drop: true`` rule matched

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


def _describe_match(match: Match) -> str:
    parts: list[str] = []
    for name in MATCH_FIELDS:
        patterns: tuple[str, ...] | None = getattr(match, name)
        if patterns is not None:
            parts.append(f"{name}={'|'.join(patterns)}")
    return " ".join(parts) or "any failure"


class Router:
    def __init__(self, routes: Sequence[Route] = (), fallback: str | None = None) -> None:
        self.routes = tuple(routes)
        self.fallback = fallback or None

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
        return RouteDecision(self.fallback, None, None, dropped=False)

    @property
    def configured(self) -> bool:
        """Some failure can produce an alert (a channel rule or a fallback exists)."""
        return self.fallback is not None or any(not r.drop for r in self.routes)

    def may_alert(self, kind: EventKind) -> bool:
        """Whether any failure of ``kind`` can reach a channel: the watcher does not poll kinds
        that can only be dropped."""
        for rule in self.routes:
            kinds = rule.match.kind
            if kinds is not None and kind not in kinds:
                continue
            if not rule.drop:
                return True
            if all(getattr(rule.match, name) is None for name in MATCH_FIELDS if name != "kind"):
                return False  # drops every failure of this kind
        return self.fallback is not None

    def kinds(self) -> tuple[EventKind, ...]:
        return tuple(k for k in EVENT_KINDS if self.may_alert(k))

    def describe(self) -> list[str]:
        """The routing table, one line per rule, for ``codestream-bot check``."""
        lines: list[str] = []
        for index, rule in enumerate(self.routes):
            target = "drop (no alert)" if rule.drop else f"channel {rule.channel}"
            if rule.mention:
                target += f", mention {rule.mention}"
            lines.append(f"routes[{index}]: {_describe_match(rule.match)} -> {target}")
        if self.fallback:
            lines.append(f"otherwise: channel {self.fallback} (BOT_ALERT_CHANNEL)")
        else:
            lines.append("otherwise: no alert (BOT_ALERT_CHANNEL is not set)")
        skipped = [k for k in EVENT_KINDS if not self.may_alert(k)]
        if skipped:
            lines.append(f"not polled (no rule can alert on them): {', '.join(skipped)}")
        return lines
