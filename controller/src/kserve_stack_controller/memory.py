"""Keeping the controller's resident memory close to what it holds.

The controller's threads (kopf's handler pool, the refresh threads, the event poster) each
get a malloc arena of their own from glibc, and a burst of reconciles (a restart with 1,000
InferenceServices) leaves freed blocks spread over all of them, which glibc keeps. Two arenas
are plenty for threads that mostly wait on the API server, and ``malloc_trim`` after a burst
hands the freed pages back. Where the C library is not glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any

#: mallopt's parameter for the most arenas (glibc's malloc.h).
_M_ARENA_MAX = -8
#: Arenas for the whole process; set before the threads start.
ARENAS = 2
#: How often the heaps are trimmed while there is work (seconds).
TRIM_PERIOD = 5.0


def _glibc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


_LIBC = _glibc()


def limit_arenas(count: int = ARENAS) -> bool:
    """Let malloc use at most ``count`` arenas; True where that took effect."""
    return bool(_LIBC is not None and _LIBC.mallopt(_M_ARENA_MAX, count) == 1)


def trim() -> bool:
    """Return the free memory at the heaps' ends and free whole pages inside them to the
    system; True where some was returned."""
    return bool(_LIBC is not None and _LIBC.malloc_trim(0) == 1)


async def trim_while_busy(activity: Callable[[], int], period: float = TRIM_PERIOD) -> None:
    """Every ``period`` seconds, trim the heaps if the count ``activity`` returns (the
    reconciles so far) moved since the last trim: idle, nothing is done."""
    if _LIBC is None:
        return
    trimmed_at = activity()
    while True:
        await asyncio.sleep(period)
        count = activity()
        if count != trimmed_at:
            trimmed_at = count
            await asyncio.to_thread(trim)  # ctypes lets go of the GIL meanwhile
