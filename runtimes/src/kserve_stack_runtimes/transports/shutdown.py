"""The graceful stop both listeners share: stop accepting, ask every connection to finish,
wait for them up to a grace period, then cut what is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Any, Protocol


class _Connection(Protocol):
    transport: Any


async def close_gracefully(
    server: asyncio.Server | None,
    connections: Collection[_Connection],
    finish: Callable[[Any], None],
    grace: float,
) -> None:
    """Close ``server``, call ``finish`` on each connection (it closes itself once idle),
    wait until ``connections`` (which connections leave as they close) is empty or
    ``grace`` seconds passed, abort the rest and wait for the server to be closed."""
    if server is not None:
        server.close()
    for conn in list(connections):
        finish(conn)
    deadline = time.monotonic() + grace
    while connections and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for conn in list(connections):
        if conn.transport is not None:
            conn.transport.abort()
    if server is not None:
        await server.wait_closed()
