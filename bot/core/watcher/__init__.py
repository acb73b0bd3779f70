"""The watcher: finds failed git, Gerrit and Docker-registry events and posts one alert each.

Code Stream sends nothing when an event fails to trigger, so failures are found by polling.
Each cycle, per kind (``loop``):

1. List events newest-updated first and stop at the kind's cursor (``cursor``: the newest update
   time already handled, plus the ids at exactly that time). Nothing new costs one request
   (``listing``).
2. Oldest first, for each new failure: skip it if its alert exists; else claim
   ``alert:{kind}:{id}:{index}`` in the store, post it through the core's ``AlertNotifier``
   port, and save it (``posting``).
3. Move the cursor only past events that are done (alerted, or needing no alert). A failure
   whose post failed stops the cursor there, so it is retried on the next cycle: alerts arrive
   late, never lost, and never twice.

One replica polls at a time (store lease ``watcher``). ``wake()`` (the webhook) polls now,
even on a replica without the lease: the claims keep that exactly-once too.
"""

from bot.core.watcher.cursor import Cursor, update_micros
from bot.core.watcher.listing import FILTER_MARGIN_US, ORDER_BY
from bot.core.watcher.loop import LEASE, MAX_BACKOFF, MIN_WAKE_GAP, WAKE_FOLLOW_UP, Watcher, backoff_delay
from bot.core.watcher.policy import AlertPolicy, WatchTiming
from bot.core.watcher.posting import CLAIM_WINDOW
from bot.core.watcher.stats import CycleStats, KindStats

__all__ = [
    "CLAIM_WINDOW",
    "FILTER_MARGIN_US",
    "LEASE",
    "MAX_BACKOFF",
    "MIN_WAKE_GAP",
    "ORDER_BY",
    "WAKE_FOLLOW_UP",
    "AlertPolicy",
    "Cursor",
    "CycleStats",
    "KindStats",
    "WatchTiming",
    "Watcher",
    "backoff_delay",
    "update_micros",
]
