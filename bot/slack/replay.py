"""Whether Slack already delivered this request or event, across replicas: the check every
listener's work makes right after the ack (``InteractionContext.start``). The claims are the
core's (``bot.core.replay``); the keys are Slack's: a request's signature, an event's id."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Final

from bot.core.replay import ReplayLedger
from bot.slack.signature import SignatureLedger

log = logging.getLogger(__name__)

# Slack retries an unacknowledged event up to three times within about an hour.
EVENT_DEDUPE_SECONDS: Final = 3600.0


class SlackReplays:
    """At most once per Slack delivery, across replicas."""

    def __init__(self, ledger: ReplayLedger) -> None:
        self._ledger = ledger
        self._signatures = SignatureLedger(ledger.first_seen)

    async def accepted_once(self, headers: Mapping[str, Sequence[str] | str]) -> bool:
        """After the ack, before any work: False for a signed request another replica (or this
        one) already took — a replay does nothing."""
        flat = {k.lower(): (v if isinstance(v, str) else (v[0] if v else "")) for k, v in headers.items()}
        if await self._signatures.first_use(flat):
            return True
        log.warning("replayed Slack request ignored")
        return False

    async def first_trigger(self, trigger_id: str | None) -> bool:
        """False when Slack delivers the same command or click again (same ``trigger_id``): Socket
        Mode redelivers an envelope it saw no ack for on the next connection, and there is no
        signature to tell it by."""
        if not trigger_id:
            return True
        try:
            return await self._ledger.first_seen(f"slack-trigger:{trigger_id}", EVENT_DEDUPE_SECONDS)
        except Exception:
            log.exception("delivery de-duplication unavailable; relying on the action claim")
            return True

    async def first_delivery(self, event_id: object) -> bool:
        """False when Slack re-delivers an Events API event (same ``event_id``) that this or another
        replica already took: a retry after a slow ack must not act or answer twice."""
        if not isinstance(event_id, str) or not event_id:
            return True
        try:
            return await self._ledger.first_seen(f"slack-event:{event_id}", EVENT_DEDUPE_SECONDS)
        except Exception:
            log.exception("event de-duplication unavailable; relying on the action claim")
            return True
