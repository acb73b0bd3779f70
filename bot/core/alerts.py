"""Posting a failure alert: render it, post it, remember it (channel, ts) in the store so thread
replies and buttons find the event, and so it is never posted twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.app.runtime import Runtime
from bot.codestream.models import Event
from bot.slack.delivery import Delivery
from bot.slack.render.messages import render_alert
from bot.store import AlertRecord

log = logging.getLogger(__name__)


async def post_alert(
    runtime: Runtime,
    delivery: Delivery,
    event: Event,
    *,
    channel: str,
    mention: str | None = None,
    thread_ts: str | None = None,
) -> AlertRecord | None:
    """Post the alert for ``event``; None when Slack refused (the caller retries later)."""
    assert event.id is not None
    url = runtime.settings.execution_link(event.execution_id)
    message = render_alert(event, execution_url=url, mention=mention, now=datetime.now(UTC))
    ts = await delivery.post(channel, message, thread_ts=thread_ts)
    if ts is None:
        return None
    record = AlertRecord(
        kind=event.kind,
        event_id=event.id,
        execution_index=event.execution_index,
        channel_id=channel,
        ts=ts,
        thread_ts=thread_ts,
    )
    await runtime.store.save_alert(record)
    log.info(
        "alert posted",
        extra={
            "kind": event.kind,
            "event_id": event.id,
            "execution_index": event.execution_index,
            "channel_id": channel,
        },
    )
    return record
