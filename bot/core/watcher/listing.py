"""Listing what is new since a cursor, and coping with Code Stream servers that reject or
ignore the OData options the watcher relies on."""

from __future__ import annotations

import logging
from typing import Final

from bot.codestream.client import CodeStreamClient
from bot.codestream.errors import BadRequest
from bot.codestream.models import Event, EventKind, EventPage
from bot.core.watcher.cursor import Cursor, format_micros, update_micros
from bot.core.watcher.stats import KindStats

log = logging.getLogger("bot.core.watcher")

ORDER_BY: Final = "updatedAt desc"
# The $filter asks a little further back than the cursor: a server comparing timestamps at a
# coarser precision must still return everything we need (we filter exactly client-side).
FILTER_MARGIN_US: Final = 1_000_000


class EventLister:
    def __init__(self, client: CodeStreamClient, *, page_size: int) -> None:
        self.client = client
        self.page_size = page_size
        # Turned off, with a warning, if this Code Stream answers 400 to them.
        self.use_filter = True
        self.use_orderby = True

    async def list_new(self, kind: EventKind, cursor: Cursor, stats: KindStats) -> list[tuple[int, Event]]:
        """Events past the cursor, oldest first. Pages newest first and stops at the cursor,
        unless the server turns out not to sort (then it reads every page)."""
        found: list[tuple[int, Event]] = []
        listed: set[str] = set()
        skip = 0
        previous: int | None = None
        ordered = self.use_orderby
        while True:
            page = await self._list_page(kind, cursor, skip)
            stats.requests += 1
            stats.events += len(page.events)
            reached = False
            fresh = 0
            for event in page.events:
                micros = update_micros(event)
                # No update time: cannot be placed (Code Stream always sets one). Seen already:
                # the list shifted while paging; an event updated meanwhile shows up next cycle.
                if micros is None or not event.id or event.id in listed:
                    continue
                listed.add(event.id)
                fresh += 1
                if ordered and previous is not None and micros > previous:
                    ordered = False
                    log.warning("watcher: Code Stream ignored $orderby=%s; reading every %s event", ORDER_BY, kind)
                previous = micros
                reached = reached or micros < cursor.micros
                if not cursor.covers(micros, event.id):
                    found.append((micros, event))
            skip += len(page.events)
            if not page.events or (reached and ordered):
                break
            if page.total_count is not None and skip >= page.total_count:
                break
            if fresh == 0:
                break  # nothing but repeats: a server ignoring $skip would otherwise page forever
        return sorted(found, key=lambda item: (item[0], item[1].id or ""))

    async def _list_page(self, kind: EventKind, cursor: Cursor, skip: int) -> EventPage:
        """One page; drops $filter, then $orderby, if this Code Stream rejects them (400)."""
        while True:
            since = format_micros(cursor.micros - FILTER_MARGIN_US)
            query = f"updatedAt ge '{since}'" if self.use_filter else None
            order = ORDER_BY if self.use_orderby else None
            try:
                return await self.client.list_events(kind, filter=query, orderby=order, top=self.page_size, skip=skip)
            except BadRequest:
                if query is not None:
                    log.warning("watcher: Code Stream rejected $filter=%s; not filtering from now on", query)
                    self.use_filter = False
                elif order is not None:
                    log.warning("watcher: Code Stream rejected $orderby=%s; reading every page from now on", order)
                    self.use_orderby = False
                else:
                    raise
