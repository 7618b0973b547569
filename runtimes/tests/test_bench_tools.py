"""The in-process benchmark tool still drives the transports it measures (it feeds their
connection objects directly, so a change there would otherwise break it unnoticed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

INCALL = Path(__file__).resolve().parents[1] / "bench" / "incall.py"


def test_incall_measures_both_protocols_warm_and_cold() -> None:
    done = subprocess.run(
        [sys.executable, str(INCALL), "--rounds", "1", "--sweep-mib", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"^  (V2 gRPC|V2 REST) +([\d.]+) +([\d.]+) +([\d.]+)", done.stdout, re.M)
    assert [r[0] for r in rows] == ["V2 gRPC", "V2 REST"] * 2, done.stdout
    for _, to_write, call, predict in rows:
        assert 0 < float(predict) < float(to_write) <= float(call)
