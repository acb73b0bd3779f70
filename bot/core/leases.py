"""Who takes a lease: the failure watcher, the approvals watcher and the follow-through each do
their job on one replica at a time, under a store lease named for the job."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.store import HolderGone


@dataclass(frozen=True)
class LeaseHolder:
    """This replica in a lease: ``name``, its id (``bot.core.liveness.new_replica_id`` in a
    running bot); ``gone``, how to tell that the replica holding the lease now is dead, so its
    lease is taken over at once instead of when it expires (None: only once it expires)."""

    name: str
    gone: HolderGone | None = None
