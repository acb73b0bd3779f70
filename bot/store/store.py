"""The state store: one code path for SQLite and PostgreSQL (SQLAlchemy 2 Core, async).

Claims and leases are single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``
statements, so they are atomic across coroutines, engines and processes on both backends.
"now" always comes from the store's clock (Python side) and is compared in the database.

:class:`Store` is assembled from one part per kind of state, each in its own module:
claims (``bot.store.claims``), the action audit (``bot.store.actions``), both at once for an
action's intent (``bot.store.intents``), alerts (``bot.store.alerts``), the alerts Slack
refused (``bot.store.undelivered``), storm digests (``bot.store.digests``), followups
(``bot.store.followups``), leases and replica heartbeats (``bot.store.liveness``), cursors
(``bot.store.cursors``), mutes (``bot.store.mutes``), subscriptions
(``bot.store.subscriptions``) and approvals (``bot.store.approvals``).
"""

from __future__ import annotations

from bot.store.alerts import AlertStore
from bot.store.approvals import ApprovalStore
from bot.store.base import Clock
from bot.store.cursors import CursorStore
from bot.store.digests import DigestStore
from bot.store.followups import FollowupStore
from bot.store.intents import IntentStore
from bot.store.liveness import HolderGone, LivenessStore
from bot.store.mutes import MuteStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.undelivered import UndeliveredStore

__all__ = ["Clock", "HolderGone", "Store"]


class Store(
    IntentStore,
    AlertStore,
    UndeliveredStore,
    DigestStore,
    FollowupStore,
    LivenessStore,
    CursorStore,
    MuteStore,
    SubscriptionStore,
    ApprovalStore,
):
    """State shared by the bot's replicas. Create with :func:`bot.store.open_store`."""
