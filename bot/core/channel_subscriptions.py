"""A channel's subscriptions as people change and read them from Slack (``bot.core.subscriptions``
does the checks and the audit)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import subscriptions
from bot.core.access import AccessPolicy, Viewer
from bot.core.subscriptions import Asker, Filters, Subscribed
from bot.store import Store, SubscriptionRecord


@dataclass(frozen=True)
class ChannelSubscriptions:
    store: Store
    access: AccessPolicy

    async def subscribe(self, asker: Asker, filters: Filters) -> Subscribed:
        return await subscriptions.subscribe(self.store, self.access, asker, filters)

    async def unsubscribe(self, asker: Asker, number: int) -> SubscriptionRecord:
        return await subscriptions.unsubscribe(self.store, self.access, asker, number)

    async def of_channel(self, channel: str) -> list[SubscriptionRecord]:
        """The channel's live subscriptions; raises when the store cannot say."""
        return await self.store.subscriptions.live(channel)

    async def visible(self, viewer: Viewer, records: list[SubscriptionRecord]) -> list[SubscriptionRecord]:
        """Those of ``records`` that ``viewer`` may see."""
        return [r for r in records if await subscriptions.may_see(self.access, viewer, r)]
