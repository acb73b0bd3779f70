"""Subscriptions: a channel routes failures to itself (``/codestream subscribe project:Payments``)
without an operator editing BOT_CONFIG. They are stored (every replica routes by them), read by
the watcher once a cycle and evaluated after the file's routes (whose order and ``drop`` rules
keep priority) and before BOT_ALERT_CHANNEL. Subscribing needs the access action ``subscribe``,
checked for the channel and for what the subscription covers; every change is audited.
"""

from __future__ import annotations

import html
import json
import logging
import shlex
from dataclasses import dataclass
from typing import Final, get_args

from bot.codestream.models import EVENT_KINDS, EventKind, as_kind
from bot.core.access import AccessPolicy, Scope, Viewer
from bot.core.errors import AccessDenied, UsageError
from bot.core.fileconfig import normalize_mention
from bot.core.requests import Actor, new_request_id
from bot.core.routing import StoredRoute, overlap, specificity
from bot.store import ActionRecord, Store, SubscriptionFilters, SubscriptionRecord

log = logging.getLogger(__name__)

#: What ``kind:`` takes: the event kinds, and ``approval`` (approval requests, routed by the
#: approvals feature; it matches no failure event).
SUBSCRIPTION_KINDS: Final[tuple[str, ...]] = (*get_args(EventKind), "approval")
FILTERS: Final = ("kind", "project", "pipeline", "repo", "branch", "mention")
SUBSCRIBE_USAGE: Final = (
    "Usage: `/codestream subscribe [kind:git|gerrit|docker|approval] [project:P] [pipeline:GLOB] "
    '[repo:GLOB] [branch:GLOB] [mention:@group]` (quote a value with spaces: `project:"Team A"`).'
)
UNSUBSCRIBE_USAGE: Final = "Usage: `/codestream unsubscribe <n>` (`/codestream subscriptions` lists them)."
MAX_VALUE: Final = 200  # characters of one filter value
MAX_PER_CHANNEL: Final = 20  # live subscriptions of one channel: a list that fits one message
_SMART_QUOTES: Final = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


#: What a subscription matches and whom its alerts mention (the store keeps them so).
Filters = SubscriptionFilters


def parse_filters(words: tuple[str, ...] | list[str]) -> Filters:
    """``kind:git project:"Team A" pipeline:pay-* mention:<!subteam^S0PAY>`` → Filters; a
    UsageError saying what is wrong (with the usage) otherwise."""
    # Slack sends the text HTML-escaped (& < >) and macOS turns quotes into curly ones.
    text = html.unescape(" ".join(words)).translate(_SMART_QUOTES)
    try:
        tokens = shlex.split(text)
    except ValueError:
        raise UsageError(f"A quote is not closed. {SUBSCRIBE_USAGE}") from None
    found: dict[str, str] = {}
    for token in tokens:
        name, colon, value = token.partition(":")
        name = name.strip().lower()
        if not colon:
            raise UsageError(
                f"`{_clip(token)}` is not a filter: write name:value, e.g. `project:Payments`. {SUBSCRIBE_USAGE}"
            )
        if name not in FILTERS:
            raise UsageError(
                f"`{_clip(name)}` is not a filter; use kind, project, pipeline, repo, branch or mention. "
                + SUBSCRIBE_USAGE
            )
        value = value.strip()
        if name in found:
            raise UsageError(f"`{name}` is given twice; a subscription takes one value of each. {SUBSCRIBE_USAGE}")
        if not value:
            raise UsageError(f"`{name}:` needs a value. {SUBSCRIBE_USAGE}")
        if len(value) > MAX_VALUE or not value.isprintable():
            raise UsageError(f"The `{name}` value is too long or holds control characters. {SUBSCRIBE_USAGE}")
        found[name] = value
    kind = found.get("kind")
    if kind is not None:
        kind = kind.lower()
        if kind not in SUBSCRIPTION_KINDS:
            raise UsageError(f"`kind` must be git, gerrit, docker or approval (got `{_clip(kind)}`). {SUBSCRIBE_USAGE}")
    mention = found.get("mention")
    if mention is not None:
        mention = _mention(mention)
    pipeline = found.get("pipeline")
    if pipeline is not None and any(c in pipeline for c in "?[]"):
        # Access rules scope pipelines by pattern; a subscription's pattern is checked against
        # them, which is sound only for plain text and "*" (a "[!x]" class would slip past).
        raise UsageError(f"`pipeline` takes a name, or a pattern with `*` only (no `?` or `[…]`). {SUBSCRIBE_USAGE}")
    return Filters(
        kind=kind,
        project=found.get("project"),
        pipeline=pipeline,
        repo=found.get("repo"),
        branch=found.get("branch"),
        mention=mention,
    )


def _mention(value: str) -> str:
    if value.startswith("@"):
        raise UsageError(
            f"Slack did not turn `{_clip(value)}` into a user group or a person: pick it from the @ menu "
            f"as you type. {SUBSCRIBE_USAGE}"
        )
    try:
        # Stored without Slack's label (``<!subteam^S0PAY|@payments-oncall>``): ids only.
        return normalize_mention(value).split("|", 1)[0].rstrip(">") + ">"
    except ValueError as exc:
        raise UsageError(f"`mention` {exc}. {SUBSCRIBE_USAGE}") from None


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def covered_kinds(kind: str | None) -> tuple[EventKind, ...]:
    """The event kinds a subscription's access is checked on. An approval subscription has no
    event kind of its own: it needs a rule that covers every kind (not one limited to kinds)."""
    matched = as_kind(kind) if kind is not None else None
    return (matched,) if matched is not None else EVENT_KINDS


def scopes(filters: Filters | SubscriptionRecord) -> list[Scope]:
    """What access is checked against: each kind it covers, its project and its pipeline glob
    (a rule's pipeline patterns must match the glob itself; no pipeline filter means any
    pipeline, which only a rule not limited to pipelines allows)."""
    return [
        Scope(kind, filters.project, filters.pipeline, pipeline_is_pattern=True) for kind in covered_kinds(filters.kind)
    ]


async def may_see(access: AccessPolicy, viewer: Viewer, filters: Filters | SubscriptionRecord) -> bool:
    """Whether the policy's show rules let ``viewer`` see what the subscription sends."""
    for scope in scopes(filters):
        if not await access.may_see(viewer, scope):
            return False
    return True


def key(channel: str, filters: Filters) -> str:
    """One subscription of a channel per set of filters (as JSON: `project:x:y` is not
    `project:x pipeline:y`)."""
    values = [channel, filters.kind, filters.project, filters.pipeline, filters.repo, filters.branch]
    return "subscribe:" + json.dumps(values, separators=(",", ":"))


@dataclass(frozen=True)
class Subscribed:
    record: SubscriptionRecord
    already: bool = False  # the channel had exactly this subscription: nothing was added
    # Other channels' subscriptions that may get some of the same failures (one alert each).
    overlaps: tuple[Overlap, ...] = ()


@dataclass(frozen=True)
class Overlap:
    """Another channel's subscription that may match some of the same failures: those go to the
    one tried first (``bot.core.routing.by_specificity``), once."""

    other: SubscriptionRecord
    other_wins: bool  # the shared failures go to the other channel
    other_names_more: bool  # ...because it narrows more (else: it is older, or this one narrows more)


@dataclass(frozen=True)
class Asker:
    """Who asks, from where (the channel the subscription is for)."""

    actor: Actor
    channel_id: str | None
    team_id: str | None = None

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.actor.user_id, self.channel_id, self.team_id)


def _audit(
    asker: Asker, action: str, filters: Filters | SubscriptionRecord, subscription_id: int | None
) -> ActionRecord:
    return ActionRecord(
        kind=filters.kind or "any",
        event_id=f"#{subscription_id}" if subscription_id else "",
        action=action,
        actor_id=asker.actor.user_id,
        actor_name=asker.actor.name,
        surface="slash",
        channel_id=asker.channel_id,
        project=filters.project,
        pipeline=filters.pipeline,
    )


async def _check(store: Store, access: AccessPolicy, asker: Asker, audit: ActionRecord, filters: Filters) -> None:
    try:
        for scope in scopes(filters):
            await access.check_action("subscribe", asker.viewer, scope)
    except AccessDenied as denied:
        await store.actions.record(audit.model_copy(update={"status": "denied", "error": denied.user_message}))
        raise


async def subscribe(store: Store, access: AccessPolicy, asker: Asker, filters: Filters) -> Subscribed:
    """Add the route; UsageError when it cannot be (not a channel, too many), AccessDenied
    (audited) when the policy refuses."""
    channel = asker.channel_id
    if channel is None or channel[:1] not in ("C", "G"):
        raise UsageError("Subscribe in a channel: its failures are alerted in the channel where you subscribe.")
    audit = _audit(asker, "subscribe", filters, None)
    await _check(store, access, asker, audit, filters)
    # Two requests at once (a double submit) must not make two: one at a time per channel and
    # filter, and a live identical subscription is the answer.
    claim_key, holder = key(channel, filters), new_request_id()
    if not (await store.claims.claim(claim_key, holder, 30.0)).won:
        raise UsageError("Someone is adding that subscription right now; `/codestream subscriptions` lists them.")
    try:
        live = await store.subscriptions.live(channel)
        same = next((s for s in live if key(channel, Filters.of(s)) == claim_key), None)
        if same is not None:
            return Subscribed(same, already=True)
        if len(live) >= MAX_PER_CHANNEL:
            raise UsageError(
                f"This channel has {len(live)} subscriptions, the most it may have; "
                "`/codestream unsubscribe <n>` one first (`/codestream subscriptions` lists them)."
            )
        now = store.now()
        record = SubscriptionRecord(
            channel_id=channel,
            **filters.model_dump(),
            created_by=asker.actor.user_id,
            created_at=now,
        )
        record.id = await store.subscriptions.add(record)
    finally:
        await store.claims.release(claim_key, holder)
    await store.actions.record(
        audit.model_copy(update={"event_id": f"#{record.id}", "status": "started", "finished_at": now})
    )
    log.info("subscribed", extra={"subscription_id": record.id, "channel_id": channel, "actor_id": asker.actor.user_id})
    return Subscribed(record, overlaps=await _overlaps(store, record))


async def _overlaps(store: Store, record: SubscriptionRecord) -> tuple[Overlap, ...]:
    """Other channels' live subscriptions that may share failures with ``record``."""
    assert record.id is not None
    mine = as_route(record)
    found: list[Overlap] = []
    for other in await store.subscriptions.live():
        if other.channel_id == record.channel_id or other.id is None:
            continue
        theirs = as_route(other)
        winner = overlap(mine, theirs)
        if winner is not None:
            found.append(Overlap(other, winner is theirs, specificity(theirs) > specificity(mine)))
    return tuple(found)


async def unsubscribe(store: Store, access: AccessPolicy, asker: Asker, subscription_id: int) -> SubscriptionRecord:
    """Remove subscription ``subscription_id`` of the asker's channel; UsageError when the
    channel has no such live subscription, AccessDenied (audited)."""
    record = await store.subscriptions.get(subscription_id)
    gone = UsageError(f"This channel has no subscription #{subscription_id}. `/codestream subscriptions` lists them.")
    if record is None or record.removed_at is not None or record.channel_id != asker.channel_id:
        raise gone
    audit = _audit(asker, "unsubscribe", record, subscription_id)
    await _check(store, access, asker, audit, Filters.of(record))
    now = store.now()
    if not await store.subscriptions.remove(subscription_id, by=asker.actor.user_id, at=now):
        raise gone
    await store.actions.record(audit.model_copy(update={"status": "started", "finished_at": now}))
    log.info("unsubscribed", extra={"subscription_id": subscription_id, "actor_id": asker.actor.user_id})
    return record.model_copy(update={"removed_at": now, "removed_by": asker.actor.user_id})


def describe(filters: Filters | SubscriptionRecord) -> str:
    """``git failures of Payments pipelines pay-* on main`` — in words, for people."""
    kind = filters.kind
    what = "approval requests" if kind == "approval" else f"{kind} failures" if kind else "failures"
    parts = [what]
    if filters.project:
        parts.append(f"of project {filters.project}")
    if filters.pipeline:
        parts.append(f"pipeline {filters.pipeline}")
    if filters.repo:
        parts.append(f"repository {filters.repo}")
    if filters.branch:
        parts.append(f"on branch {filters.branch}")
    if len(parts) == 1:
        parts.insert(0, "all")
    return " ".join(parts)


class StoredRoutes:
    """The watcher's view of the subscriptions, read once per cycle."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._routes: tuple[StoredRoute, ...] = ()

    async def load(self) -> tuple[StoredRoute, ...]:
        """The live subscriptions as routes. A store that cannot say keeps the last ones read:
        a database hiccup must not reroute a channel's failures to the fallback."""
        try:
            records = await self.store.subscriptions.live()
        except Exception as exc:  # noqa: BLE001 - logged; routing carries on with what it knew
            log.warning(
                "watcher: subscriptions unreadable; routing by the last ones read",
                extra={"error_class": type(exc).__name__},
            )
            return self._routes
        self._routes = tuple(as_route(r) for r in records)
        return self._routes


def as_route(record: SubscriptionRecord) -> StoredRoute:
    """A stored subscription as the router tries it."""
    return StoredRoute(record.id or 0, record.channel_id, Filters.of(record))
