"""Retries of Code Stream requests: bounded exponential backoff that honours ``Retry-After``.

Reads (GET) are retried on connection errors, 429 and 502/503/504. Resume/rerun (POST) is
retried only when it certainly did not leave (``request_sent=False``): once it may have reached
the server, sending it again could run the pipeline twice, so what it did is read back instead
(``read_back``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.codestream.errors import RateLimited, TLSFailure, Unavailable
from bot.codestream.transport import TransportFailure

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # total tries for a GET
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 30.0  # a longer Retry-After is reported, not waited out
    reconcile_reads: int = 3  # read-backs after an ambiguous POST
    reconcile_delay: float = 1.0


async def with_retries(policy: RetryPolicy, attempt: Callable[[], Awaitable[_T]], *, retry_sent: bool) -> _T:
    """Run ``attempt`` under ``policy``. ``retry_sent=False``: retry only transport failures
    from before the request left (a POST); ``True``: also retry one that may have arrived,
    429 and unavailable servers (a GET)."""

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, TransportFailure):
            return retry_sent or not exc.request_sent
        if not retry_sent:
            return False
        if isinstance(exc, RateLimited):
            return exc.retry_after is None or exc.retry_after <= policy.max_retry_after
        return isinstance(exc, Unavailable) and not isinstance(exc, TLSFailure)

    backoff = wait_exponential_jitter(
        multiplier=policy.initial_backoff, max=policy.max_backoff, jitter=policy.initial_backoff
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(backoff(state))

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        reraise=True,
        before_sleep=_log_retry,
    )
    async for try_ in retrying:
        with try_:
            return await attempt()
    raise AssertionError("unreachable")  # pragma: no cover


async def read_back(policy: RetryPolicy, read: Callable[[], Awaitable[_T]], shows: Callable[[_T], bool]) -> _T | None:
    """After an ambiguous POST: up to ``reconcile_reads`` reads, ``reconcile_delay`` apart, and
    the first one that ``shows`` the POST applied; None when none did (``read`` may give None
    for a read that failed: it shows nothing)."""
    for attempt in range(policy.reconcile_reads):
        if attempt:
            await asyncio.sleep(policy.reconcile_delay)
        after = await read()
        if shows(after):
            return after
    return None


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info(
        "codestream request retried",
        extra={
            "attempt": state.attempt_number,
            "error_class": type(exc).__name__ if exc else None,
            "wait_s": round(state.upcoming_sleep, 2),
        },
    )
