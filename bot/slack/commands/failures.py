"""``/codestream list [kind]``: recent failed events the caller may see, each with a Rerun button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.codestream.errors import CodeStreamError
from bot.codestream.models import EVENT_KINDS, Event, EventKind
from bot.core import mutes
from bot.core.access import Scope, Viewer
from bot.core.commands import Invocation
from bot.slack.interaction import Interaction
from bot.slack.render.messages import SlackMessage, render_error, render_event_list
from bot.slack.surfaces import Surfaces


async def visible_failures(surfaces: Surfaces, viewer: Viewer, kinds: Sequence[EventKind]) -> list[Event]:
    """Recent failed events (a page of each kind) the policy's show rules let ``viewer`` see,
    newest first; CodeStreamError when Code Stream cannot be read."""
    events: list[Event] = []
    for kind in kinds:
        page = await surfaces.client.list_events(kind, orderby="updatedAt desc", top=50)
        for event in page.events:
            if event.is_failure and await surfaces.access.may_see(viewer, Scope.of(kind, event)):
                events.append(event)
    events.sort(key=lambda e: e.updated or datetime.min.replace(tzinfo=UTC), reverse=True)
    return events


def execution_urls(surfaces: Surfaces, events: Sequence[Event]) -> dict[str, str]:
    return {e.id: url for e in events if e.id and (url := surfaces.execution_link(e.execution_id))}


async def list_failures(surfaces: Surfaces, interaction: Interaction, invocation: Invocation) -> SlackMessage:
    viewer = await surfaces.viewer(interaction)
    kinds = [invocation.kind] if invocation.kind else list(EVENT_KINDS)
    try:
        events = await visible_failures(surfaces, viewer, kinds)  # only what this person may see, here
    except CodeStreamError as exc:
        return render_error(exc)
    urls = execution_urls(surfaces, events)
    now = datetime.now(UTC)
    active = await surfaces.store.mutes.active(now)
    muted = {
        e.id: mutes.describe(mute)
        for e in events
        if e.id and (mute := next((m for m in active if mutes.matches(m, e)), None)) is not None
    }
    return render_event_list(events, execution_urls=urls, now=now, muted=muted)
