"""Running a request's coroutine on the event loop without a task until it first has to wait.

A model whose stages are plain functions never waits, so its request ends inside the transport's
``data_received``: no task, no further loop iteration. If the coroutine does wait, a task carries
on from where it stopped, in the same context.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Coroutine, Generator
from typing import Any


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Continue ``coro``, suspended after yielding ``waiting_on``, as a task's coroutine would."""
    while True:
        try:
            value = yield waiting_on
        except BaseException as exc:  # the task was cancelled (or a future failed): pass it on
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(value)
        except StopIteration:
            return


async def _carry_on(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _resume(coro, waiting_on)


def run_inline(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` here, in a copy of the current context, until it ends or first waits.

    Returns None when it ended, else the task that runs the rest of it. ``coro`` must handle its
    own errors: one it raises while running here propagates to the caller.
    """
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coro.send, None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_carry_on(coro, waiting_on), context=context)
