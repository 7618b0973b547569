"""Throttled progress lines for long downloads: bytes and files, at most every few seconds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Progress:
    """Counts bytes and files of one download and logs a line at most every ``interval`` s.

    Thread-safe: object downloads running in parallel all report into one instance.
    """

    def __init__(
        self,
        label: str,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = logger,
    ) -> None:
        self.label = label
        self.interval = interval
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._started = clock()
        self._last_report = self._started
        self.bytes_done = 0
        self.files_done = 0
        self.total_bytes: int | None = None
        self.total_files: int | None = None
        self.reports = 0

    def set_totals(self, files: int | None, size: int | None) -> None:
        with self._lock:
            self.total_files = files
            self.total_bytes = size

    def add_bytes(self, n: int) -> None:
        """Record ``n`` more bytes (negative to roll back a failed attempt)."""
        with self._lock:
            self.bytes_done += n
        self._maybe_report()

    def set_bytes(self, n: int) -> None:
        """Set the byte count outright (used when a library downloads and we only watch)."""
        with self._lock:
            self.bytes_done = n
        self._maybe_report()

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1
        self._maybe_report()

    def line(self) -> str:
        done = human_bytes(self.bytes_done)
        size = f"{done} of {human_bytes(self.total_bytes)}" if self.total_bytes else done
        files = (
            f"{self.files_done}/{self.total_files} files"
            if self.total_files is not None
            else f"{self.files_done} files"
        )
        return f"{self.label}: {size}, {files}"

    def elapsed(self) -> float:
        return self._clock() - self._started

    def _maybe_report(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last_report < self.interval:
                return
            self._last_report = now
            self.reports += 1
            text = self.line()
        self._log.info("progress %s", text)


def _tree_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:  # a file vanished while we walked (renamed by the downloader)
            continue
    return total


@contextmanager
def watch_directory(progress: Progress, path: Path) -> Iterator[None]:
    """Report the size of ``path`` while a library we cannot instrument downloads into it."""
    stop = threading.Event()
    poll = max(0.05, min(progress.interval, 1.0))

    def run() -> None:
        while not stop.wait(poll):
            progress.set_bytes(_tree_size(path))

    thread = threading.Thread(target=run, name="storage-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress.set_bytes(_tree_size(path))
