"""The controller's handler of errors nothing awaited: a kopf watch stream that fails to close as
the operator exits is one warning line; anything else reaches asyncio's own handler, traceback
and all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from kopf._cogs.clients import watching
from kserve_stack_controller.__main__ import loop_exception_handler


async def _ours() -> AsyncIterator[int]:
    yield 1


def _closing_failed(generator: object) -> dict[str, object]:
    """The context asyncio passes when closing ``generator`` at exit failed."""
    return {
        "message": "an error occurred during closing of asynchronous generator",
        "exception": RuntimeError("generator didn't stop after athrow()"),
        "asyncgen": generator,
    }


def test_a_kopf_watch_stream_failing_to_close_is_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    stream = watching.infinite_watch(settings=None, resource=None, namespace=None)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.DEBUG):
            loop_exception_handler(loop, _closing_failed(stream))
    finally:
        loop.run_until_complete(stream.aclose())  # never started: closes cleanly
        loop.close()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "infinite_watch" in record.getMessage() and "athrow" in record.getMessage()
    assert record.exc_info is None  # no traceback


def test_other_errors_reach_asyncios_handler(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    generator = _ours()
    try:
        with caplog.at_level(logging.DEBUG):
            loop_exception_handler(loop, _closing_failed(generator))
            loop_exception_handler(loop, {"message": "Task exception was never retrieved",
                                          "exception": ValueError("boom")})  # fmt: skip
    finally:
        loop.run_until_complete(generator.aclose())
        loop.close()
    assert [r.name for r in caplog.records] == ["asyncio", "asyncio"]
    assert all(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
