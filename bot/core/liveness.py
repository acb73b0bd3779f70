"""Telling a dead replica from a live one, so that what a dead one held (a lease, an action whose
outcome it was finding out) is taken over at once instead of after a long timeout.

A replica's id is ``host:pid:pid-namespace.boot-id:nonce``. Two signals say a holder is gone:

* **the process** (definite, same machine only): the holder ran on this host in this pid
  namespace and its pid no longer runs, or is this very process's pid under another nonce (a
  restarted container reuses pid 1);
* **the heartbeat** (any machine): every replica writes a heartbeat row every few seconds and
  deletes it when it stops cleanly; a row older than ``stale_after`` means the holder stopped
  beating.

Anything else counts as alive: when in doubt, wait (a lease still expires on its own).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


def _pid_namespace() -> str:
    """This process's pid namespace on this boot of this machine: pids are comparable only
    within it. The namespace inode alone can repeat across machines, so the kernel's boot id
    (unique per boot, shared by the containers of one host) goes with it."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip().replace("-", "")[:12]
    except OSError:
        return "-"
    inode = link.removeprefix("pid:[").removesuffix("]")
    return f"{inode}.{boot}" if inode and boot else "-"


def new_replica_id() -> str:
    """This process's id in leases, claims and heartbeats."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class _Parsed:
    host: str
    pid: int
    namespace: str


def _parse(holder: str) -> _Parsed | None:
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return _Parsed(parts[0], int(parts[1]), parts[2])


def holder_pid(holder: str) -> int | None:
    """The process id in a replica id (tools and tests)."""
    parsed = _parse(holder)
    return parsed.pid if parsed is not None else None


def process_gone(holder: str, me: str) -> bool:
    """True only when ``holder`` is certainly not running: it lived on this host, in this pid
    namespace, and its pid is gone (or is ours, under an earlier nonce)."""
    if holder == me:
        return False
    theirs, mine = _parse(holder), _parse(me)
    if theirs is None or mine is None or mine.namespace == "-":
        return False
    if (theirs.host, theirs.namespace) != (mine.host, mine.namespace):
        return False
    if theirs.pid == mine.pid:
        return True  # one process per pid: the earlier holder of our pid has exited
    try:
        os.kill(theirs.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


class Heartbeats(Protocol):
    async def replica_heartbeats(self) -> dict[str, datetime]: ...


class HeartbeatSource(Protocol):
    """What :class:`Liveness` reads of the store: its clock and the heartbeat rows."""

    def now(self) -> datetime: ...

    @property
    def liveness(self) -> Heartbeats: ...


class Liveness:
    """``gone(holder)``: the process check, then the heartbeat table."""

    def __init__(self, store: HeartbeatSource, me: str, *, stale_after: float = 30.0) -> None:
        self.store = store
        self.me = me
        self.stale_after = timedelta(seconds=stale_after)

    async def gone(
        self, holder: str | None, *, beats: dict[str, datetime] | None = None, missing_is_gone: bool = False
    ) -> bool:
        """``beats``: heartbeats already read this round. ``missing_is_gone``: a holder with no
        heartbeat row at all counts as gone (every replica of this release beats from its start;
        leases may still be held by an older release that does not)."""
        if holder is None:
            return missing_is_gone
        if holder == self.me:
            return False
        if process_gone(holder, self.me):
            return True
        if beats is None:
            beats = await self.store.liveness.replica_heartbeats()
        seen = beats.get(holder)
        if seen is None:
            return missing_is_gone
        return self.store.now() - seen > self.stale_after

    async def lease_holder_gone(self, holder: str) -> bool:
        """For ``store.liveness.acquire_lease``: take a lease at once from a holder that is gone."""
        return await self.gone(holder)
