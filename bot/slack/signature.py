"""The gate in front of Bolt (HTTP mode): a request reaches the listeners only when Slack signed
it, within Slack's 5-minute window, and only the first time that signature is seen.

Bolt checks signatures too, but it raises on a malformed timestamp, and its error handler then
answers whoever the *unverified* body names; and a captured request replayed inside the window
would pass it again. Here, anything that fails is a 401 before any listener, Slack call or Code
Stream call, and a replay to the same process too (memory, on the ack path). Across replicas,
each signature is claimed in the store for the whole window after the ack and before any work
(``SignatureLedger``), so the ack never waits for a database write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Final

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

#: A request's timestamp is accepted within this many seconds of this clock (Slack's window).
MAX_SKEW_SECONDS: Final = 5 * 60
#: The longest a seen signature must be remembered.
SIGNATURE_WINDOW_SECONDS: Final = 2 * MAX_SKEW_SECONDS + 30

# Claims a signature for so many seconds; True when this is its first use.
ClaimSignature = Callable[[str, float], Awaitable[bool]]
_MARGIN_SECONDS: Final = 30
_MAX_REMEMBERED: Final = 100_000


class Verdict(Enum):
    OK = "ok"
    UNSIGNED = "missing signature or timestamp"
    MALFORMED = "malformed timestamp"
    STALE = "timestamp outside the 5-minute window"
    FORGED = "signature does not match"
    REPLAYED = "signature already used"


def signature_key(signature: str) -> str:
    return "slack-signature:" + hashlib.sha256(signature.encode("utf-8", "replace")).hexdigest()


class RequestGate:
    """Before Bolt, on the ack path: verification, and a replay seen by this process (memory
    only, so the ack never waits for the database)."""

    def __init__(self, signing_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature -> until when it is remembered

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            return Verdict.UNSIGNED
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return Verdict.MALFORMED
        if abs(self._clock() - int(timestamp)) > MAX_SKEW_SECONDS:
            return Verdict.STALE
        try:
            expected = self._verifier.generate_signature(timestamp=timestamp, body=body)
        except UnicodeDecodeError:
            return Verdict.FORGED
        if expected is None or not _equal(expected, signature):
            return Verdict.FORGED
        return Verdict.OK

    def check(self, body: bytes, headers: Mapping[str, str]) -> Verdict:
        verdict = self.verify(body, headers)
        if verdict is not Verdict.OK:
            return verdict
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) < now:
            self._seen.popitem(last=False)
        signature = headers.get("x-slack-signature", "")
        if signature in self._seen:
            return Verdict.REPLAYED
        self._seen[signature] = now + remember_for(headers, now)
        if len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)
        return Verdict.OK


def remember_for(headers: Mapping[str, str], now: float) -> float:
    """How long a signature must be remembered: as long as its own timestamp is accepted."""
    stamp = int(headers.get("x-slack-request-timestamp", "0") or 0)
    return max(1.0, stamp + MAX_SKEW_SECONDS - now) + _MARGIN_SECONDS


class SignatureLedger:
    """Across replicas: each signature is claimed in the store, for as long as its timestamp is
    accepted. Checked after the ack, before any work (a replay to another replica does nothing)."""

    def __init__(self, claim: ClaimSignature, *, clock: Callable[[], float] = time.time) -> None:
        self._claim = claim
        self._clock = clock

    async def first_use(self, headers: Mapping[str, str]) -> bool:
        signature = headers.get("x-slack-signature")
        if not signature:
            return True  # Socket Mode: Slack's own connection, nothing to replay
        try:
            return await self._claim(signature_key(signature), remember_for(headers, self._clock()))
        except Exception as exc:  # noqa: BLE001 - fail open: without the store no action can run anyway
            log.warning("replay check unavailable", extra={"error_class": type(exc).__name__})
            return True


def _equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
