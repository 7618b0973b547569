"""retry_call: bounded attempts, only retryable errors, growing delays."""

from __future__ import annotations

import pytest
from kserve_stack_runtimes.storage.errors import NotFoundError, TransientError
from kserve_stack_runtimes.storage.retry import retry_call
from kserve_stack_runtimes.storage.settings import RetryPolicy

POLICY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0)


def test_transient_errors_are_retried_with_backoff() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise TransientError("503")
        return "ok"

    assert (
        retry_call(flaky, policy=POLICY, what="x", sleep=sleeps.append, jitter=lambda: 1.0) == "ok"
    )
    assert sleeps == [1.0, 2.0, 3.0]


def test_gives_up_after_the_last_attempt() -> None:
    sleeps: list[float] = []

    def down() -> None:
        raise TransientError("connection refused")

    with pytest.raises(TransientError, match=r"connection refused \(gave up after 4 attempts\)"):
        retry_call(down, policy=POLICY, what="x", sleep=sleeps.append, jitter=lambda: 0.0)
    assert len(sleeps) == 3


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def missing() -> None:
        calls.append(1)
        raise NotFoundError("no such key")

    with pytest.raises(NotFoundError):
        retry_call(missing, policy=POLICY, what="x", sleep=lambda _: None)
    assert calls == [1]
