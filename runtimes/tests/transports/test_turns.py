"""The order in which the requests read in one pass of the loop start (transports/turns.py)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest
from kserve_stack_runtimes.transports.turns import Turns


@dataclass(eq=False)
class Holder:
    name: str
    turn: int = 0


async def test_a_pass_starts_longest_waiting_first_and_a_failure_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b, c = Holder("a"), Holder("b"), Holder("c")
    turns = Turns([a, b, c])
    started: list[str] = []

    def start(name: str) -> None:
        started.append(name)
        if name == "b1":
            raise RuntimeError("boom")

    for holder in (a, b, c):  # one per pass: turns 1, 2, 3
        turns.add(holder, start, holder.name)
        await asyncio.sleep(0)
    assert started == ["a", "b", "c"] and (a.turn, b.turn, c.turn) == (1, 2, 3)
    started.clear()
    turns.add(c, start, "c1")
    turns.add(b, start, "b1")
    turns.add(c, start, "c2")  # a connection's own requests keep their order
    turns.add(a, start, "a1")
    assert started == []  # nothing starts before the end of the pass
    with caplog.at_level(logging.ERROR):
        await asyncio.sleep(0)
    assert started == ["a1", "b1", "c1", "c2"]
    assert "starting a request failed" in caplog.text


async def test_a_single_connection_starts_its_requests_as_they_are_read() -> None:
    only = Holder("only")
    turns = Turns([only])
    started: list[str] = []
    turns.add(only, started.append, "first")
    assert started == ["first"] and only.turn == 1
