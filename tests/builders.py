"""The core's pieces built the way ``bot.app.runtime`` builds them, for tests that drive the
core without a whole bot."""

from __future__ import annotations

from collections.abc import Callable

from bot.codestream.client import CodeStreamClient
from bot.core.access import AccessPolicy, AllowEveryone
from bot.core.control.ports import LoggedControls
from bot.core.control.readback import ControlReadBack
from bot.core.lifecycle import Lifecycle
from bot.core.perform import EventPerformer, EventTarget
from bot.core.ports import OutcomeNotifier
from bot.core.readback import EventReadBack
from bot.core.reconcile import Reconciler, ReconcileTiming
from bot.store import Store


def event_actions(
    client: CodeStreamClient,
    store: Store,
    execution_url: Callable[[str], str] = str,
    *,
    access: AccessPolicy | None = None,
    owner: str = "codestream-bot",
    dedupe_seconds: float = 300.0,
) -> EventPerformer:
    lifecycle = Lifecycle(store, owner=owner)
    target = EventTarget(client, lifecycle, dedupe_seconds=dedupe_seconds)
    return EventPerformer(target, execution_url, access or AllowEveryone())


def reconciler(
    store: Store,
    client: CodeStreamClient,
    notifier: OutcomeNotifier,
    *,
    owner: str,
    timing: ReconcileTiming | None = None,
    dedupe_seconds: float = 300.0,
    retention_days: float = 0.0,
) -> Reconciler:
    lifecycle = Lifecycle(store, owner=owner)
    events = EventReadBack(lifecycle, client, notifier, execution_url=str, dedupe_seconds=dedupe_seconds)
    controls = ControlReadBack(lifecycle, client, LoggedControls(), execution_url=str)
    return Reconciler(lifecycle, events, {"execution": controls}, retention_days=retention_days, timing=timing)
