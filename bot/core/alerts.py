"""Posting a failure alert: through the notifier port, then remembered (channel, ts) in the store
so thread replies and buttons find the event, and so it is never posted twice."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.codestream.models import Event
from bot.core.failures import FailureContext
from bot.core.ports import AlertNotifier, Delivered
from bot.store import AlertRecord, Store

log = logging.getLogger(__name__)


async def post_alert(
    notifier: AlertNotifier,
    store: Store,
    event: Event,
    *,
    channel: str,
    mention: str | None = None,
    thread_ts: str | None = None,
    on_posted: Callable[[AlertRecord], None] | None = None,
    failure: FailureContext | None = None,
    author: str | None = None,
    series: str | None = None,
    repeat: bool = False,
) -> tuple[AlertRecord | None, Delivered]:
    """Post the alert for ``event`` and save it. The record is None when it was not posted (the
    caller retries later; ``Delivered.refused`` says why). ``on_posted`` sees the record before
    it is saved, so a caller can keep it if the store fails right after Slack took the post:
    that alert is then saved later, never posted again."""
    assert event.id is not None
    delivered = await notifier.post_alert(
        event, channel=channel, mention=mention, thread_ts=thread_ts, failure=failure, author=author, repeat=repeat
    )
    if delivered.ts is None:
        return None, delivered
    record = AlertRecord(
        kind=event.kind,
        event_id=event.id,
        execution_index=event.execution_index,
        channel_id=channel,
        ts=delivered.ts,
        thread_ts=thread_ts,
        series=series,
        mention=mention,
        author=author,
    )
    if on_posted is not None:
        on_posted(record)
    await store.alerts.save(record)
    log.info(
        "alert posted",
        extra={
            "kind": event.kind,
            "event_id": event.id,
            "execution_index": event.execution_index,
            "channel_id": channel,
        },
    )
    return record, delivered
