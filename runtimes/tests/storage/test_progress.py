"""Progress: throttled lines with bytes and files."""

from __future__ import annotations

import logging

import pytest
from kserve_stack_runtimes.storage.progress import Progress, human_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reports_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    progress = Progress("s3://b/m", 5.0, clock=clock)
    progress.set_totals(2, 3 * 1024 * 1024)
    for step in range(20):  # 20 chunks over 10 s
        clock.now = step * 0.5
        progress.add_bytes(100 * 1024)
    clock.now = 10.0
    progress.file_done()
    lines = [r.message for r in caplog.records]
    assert progress.reports == len(lines) == 2
    assert lines[-1] == "progress s3://b/m: 2.0 MiB of 3.0 MiB, 1/2 files"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        pytest.param(0, "0 B", id="zero"),
        pytest.param(1536, "1.5 KiB", id="kib"),
        pytest.param(5 * 1024**3, "5.0 GiB", id="gib"),
    ],
)
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text
