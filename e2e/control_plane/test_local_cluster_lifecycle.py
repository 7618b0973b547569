"""hack/cluster/local_cluster.py's own lifecycle, on a second, throw-away cluster
(its own state directory and ports, no CRDs): `up` starts it, `up` again reuses
it, `status` reports it, and `down --verify` leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kss_e2e import free_ports
from kss_e2e.backend import REPO

pytestmark = [pytest.mark.control_plane, pytest.mark.slow]

SCRIPT = REPO / "hack" / "cluster" / "local_cluster.py"
CACHE = Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack"))


def _run(state: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ours(state: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if f"{state}/" in args:
                found.append(f"{entry.name}: {args.replace(chr(0), ' ')[:150]}")
    return found


def test_up_is_idempotent_and_down_leaves_nothing(tmp_path: Path) -> None:
    if not any((CACHE / "bin").glob("kube-apiserver-*")):
        pytest.skip("the control-plane binaries are not built (make cluster-binaries)")
    state = (tmp_path / "cluster").resolve()
    api, etcd, peer, kcm, sched = free_ports(5)
    ports = [
        f"--api-port={api}",
        f"--etcd-port={etcd}",
        f"--etcd-peer-port={peer}",
        f"--controller-manager-port={kcm}",
        f"--scheduler-port={sched}",
    ]
    try:
        first = _run(state, "up", "--no-crds", *ports)
        assert first.returncode == 0, first.stderr[-3000:]
        assert f"export KUBECONFIG={state}/kubeconfig" in first.stdout
        assert len(_ours(state)) == 5, _ours(state)

        second = _run(state, "up", "--no-crds", *ports)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "already running: reusing it" in second.stderr
        assert len(_ours(state)) == 5, "a second `up` must not start more processes"

        status = _run(state, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["healthy"] is True
        assert report["nodes"] == {"kwok-cpu-0": "True", "kwok-cpu-1": "True", "kwok-gpu-0": "True"}
    finally:
        down = _run(state, "down", "--verify")
    assert down.returncode == 0, down.stderr
    assert "verify: no process of the cluster remains" in down.stderr
    assert _ours(state) == []
    assert not state.exists()
    after = _run(state, "status")
    assert after.returncode == 3
    assert "not running" in after.stdout
