"""Giving freed memory back: glibc's arena limit, malloc_trim, and when trims happen."""

from __future__ import annotations

import asyncio
import platform

import pytest
from kserve_stack_controller import memory

glibc = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt and malloc_trim are glibc's"
)


@glibc
def test_glibc_calls_take_effect() -> None:
    assert memory.limit_arenas(memory.ARENAS)
    # 80 MB of small blocks freed at once: whole pages inside the heap go back.
    blocks = [bytearray(4096) for _ in range(20_000)]
    del blocks
    assert memory.trim()


@glibc
def test_trims_only_while_there_is_work(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    counts = iter([0, 0, 3, 3, 5, 5, 5])  # reconciles as seen at start and at each period
    current = 0

    def activity() -> int:
        nonlocal current
        current = next(counts, current)
        return current

    monkeypatch.setattr(memory, "trim", lambda: trims.append(current) or True)

    async def run() -> None:
        task = asyncio.create_task(memory.trim_while_busy(activity, period=0.01))
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(run())
    assert trims == [3, 5]  # once after each period in which reconciles happened
