"""Retry an operation on transient failures with bounded exponential backoff."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import StorageError
from .settings import RetryPolicy

logger = logging.getLogger(__name__)

T = TypeVar("T")


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Call ``fn`` until it succeeds, it raises a non-retryable error, or attempts run out.

    Only :class:`StorageError` subclasses with ``retryable`` set are retried; the last error is
    re-raised with the number of attempts added to its message.
    """
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except StorageError as err:
            if not err.retryable:
                raise
            if attempt == attempts:
                if attempts > 1:
                    err.args = (f"{err} (gave up after {attempts} attempts)",)
                raise
            delay = policy.delay(attempt, jitter())
            logger.warning(
                "%s failed (attempt %d/%d): %s; retrying in %.1fs",
                what,
                attempt,
                attempts,
                err,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
