"""Answering the requests that one pass of the event loop reads in the order they came in.

The event loop reads every ready connection in one pass, in the order epoll lists them, and a
request answered inline as it is read is answered in that order. Under load from many keep-alive
connections with a request at a time each, that order is unfair: level-triggered epoll keeps a
connection its last wait returned at its place in the ready list and puts one that became ready
after that wait at the end. The client answered last in a pass sends its next request just after
the next wait has begun, misses that pass, and is read last in the pass after: it is answered
last again, misses the next wait again, and so on. Measured at 32 connections: one request in
50 waited two passes instead of one, which made the p99 twice the median.

So a pass's requests are collected as they are read and started at the end of the pass (one
``call_soon``), those of the connection whose last request started longest ago first. Under
closed-loop load that is the order the requests came in; otherwise it is round robin, with new
connections first. While a server has a single connection there is no one to take turns with,
and its requests start as they are read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sized
from typing import Any, Protocol, TypeVar

log = logging.getLogger("kserve_stack_runtimes.transports")


class Turn(Protocol):
    """What takes turns: a connection, which keeps the number of its last turn."""

    turn: int


T = TypeVar("T")
_Entry = tuple[Turn, Callable[[Any], None], Any]


def _last_turn(entry: _Entry) -> int:
    return entry[0].turn


class Turns:
    """Starts the requests read in one pass of the loop, longest-waiting connection first."""

    __slots__ = ("_count", "_holders", "_waiting")

    def __init__(self, holders: Sized) -> None:
        """``holders``: the server's open connections (only their number is read)."""
        self._holders = holders
        self._waiting: list[_Entry] = []
        self._count = 0  # turns given so far; a connection's ``turn`` is the count at its last

    def add(self, holder: Turn, start: Callable[[T], None], arg: T) -> None:
        """Call ``start(arg)`` in ``holder``'s turn: at the end of this pass, or now if
        ``holder`` is the only connection and nothing else waits."""
        if not self._waiting:
            if len(self._holders) <= 1:
                self._count += 1
                holder.turn = self._count
                start(arg)
                return
            asyncio.get_running_loop().call_soon(self._run)
        self._waiting.append((holder, start, arg))

    def _run(self) -> None:
        batch, self._waiting = self._waiting, []
        if len(batch) > 1:
            batch.sort(key=_last_turn)  # stable: a connection's own requests keep their order
        for i, (holder, start, arg) in enumerate(batch):
            self._count += 1
            holder.turn = self._count
            try:
                start(arg)
            except Exception:
                log.exception("starting a request failed")
            except BaseException:  # KeyboardInterrupt, SystemExit: start the rest next pass
                for entry in batch[i + 1 :]:
                    self.add(*entry)
                raise
