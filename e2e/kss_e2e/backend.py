"""Choose the cluster the e2e suite runs against, and bring it up if needed.

Order: ``KSS_E2E_KUBECONFIG`` (must be reachable), then ``KUBECONFIG`` when it is
reachable, then kind when a Docker engine answers, else the local control plane
(hack/cluster/local_cluster.py). ``KSS_E2E_BACKEND=existing|kind|local`` forces
one. A cluster started here is left running for later sessions: ``make
cluster-down`` (or hack/kind/down.sh) stops it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = REPO / "hack" / "cluster" / "local_cluster.py"
KIND_UP = REPO / "hack" / "kind" / "up.sh"
KIND_CLUSTER = "kserve-stack"


class BackendError(RuntimeError):
    """No usable cluster: the message says why."""


@dataclass(frozen=True)
class Cluster:
    """The cluster of this test session."""

    backend: str  # "existing", "kind" or "local"
    kubeconfig: Path
    # The local control plane's state directory (logs/ holds each component's log).
    local_state: Path | None = None

    @property
    def runs_containers(self) -> bool:
        """False on the local control plane: kwok marks pods Running, nothing runs."""
        return self.backend != "local"

    @property
    def api_server_is_local(self) -> bool:
        """True when the API server can call webhooks served on this host's 127.0.0.1."""
        return self.backend == "local"

    def component_logs(self) -> dict[str, Path]:
        if self.local_state is None:
            return {}
        logs = self.local_state / "logs"
        return {p.stem: p for p in sorted(logs.glob("*.log"))}


def kubectl_binary() -> str:
    """kubectl 1.35 from the binaries cache when built, else kubectl on PATH."""
    cache = Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack"))
    cached = sorted((cache / "bin").glob("kubectl-npm-*"))
    if cached:
        return str(cached[-1])
    found = shutil.which("kubectl")
    if found is None:
        raise BackendError("kubectl is not installed (make cluster-binaries builds one)")
    return found


def reachable(kubeconfig: Path) -> tuple[bool, str]:
    if not kubeconfig.is_file():
        return False, f"{kubeconfig} does not exist"
    try:
        result = subprocess.run(
            [kubectl_binary(), f"--kubeconfig={kubeconfig}", "get", "--raw=/readyz"],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "the API server did not answer /readyz within 15s"
    return result.returncode == 0, (result.stdout + result.stderr).strip()[-300:]


def docker_works() -> bool:
    if shutil.which("docker") is None or shutil.which("kind") is None:
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return info.returncode == 0


def _local_state_dir() -> Path:
    return Path(os.environ.get("KSS_CLUSTER_DIR", REPO / ".cluster")).resolve()


def _start_local(lock_dir: Path) -> Cluster:
    state = _local_state_dir()
    # The first xdist worker runs `up` (which starts the cluster, or reuses a
    # healthy one and re-applies the nodes and CRDs, so regenerated CRDs are
    # current); the others wait on the lock and then find it done.
    lock_dir.mkdir(parents=True, exist_ok=True)
    done = lock_dir / "local-cluster.up"
    with (lock_dir / "local-cluster.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not (done.exists() and reachable(state / "kubeconfig")[0]):
            print(f"[e2e] local_cluster.py up (state: {state})", file=sys.stderr)
            result = subprocess.run(
                [sys.executable, str(LOCAL_CLUSTER), "--state-dir", str(state), "up"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BackendError(
                    "hack/cluster/local_cluster.py up failed:\n" + result.stderr[-4000:]
                )
            done.touch()
    return Cluster("local", state / "kubeconfig", local_state=state)


def _start_kind(lock_dir: Path) -> Cluster:
    kubeconfig = lock_dir / "kind.kubeconfig"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "kind.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not reachable(kubeconfig)[0]:
            subprocess.run([str(KIND_UP)], check=True)
            text = subprocess.run(
                ["kind", "get", "kubeconfig", "--name", KIND_CLUSTER],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            kubeconfig.write_text(text)
    return Cluster("kind", kubeconfig)


def select_cluster(lock_dir: Path) -> Cluster:
    """The cluster for this session; ``lock_dir`` is shared by all xdist workers."""
    forced = os.environ.get("KSS_E2E_BACKEND", "")
    if forced not in ("", "existing", "kind", "local"):
        raise BackendError(f"KSS_E2E_BACKEND={forced!r}: expected existing, kind or local")
    explicit = os.environ.get("KSS_E2E_KUBECONFIG")
    if explicit or forced == "existing":
        path = Path(explicit or os.environ.get("KUBECONFIG", "")).expanduser()
        ok, why = reachable(path)
        if not ok:
            raise BackendError(f"the cluster of {path} is not reachable: {why}")
        return Cluster("existing", path)
    if not forced and os.environ.get("KUBECONFIG"):
        path = Path(os.environ["KUBECONFIG"]).expanduser()
        if reachable(path)[0]:
            return Cluster("existing", path)
        print(f"[e2e] KUBECONFIG={path} is not reachable: ignoring it", file=sys.stderr)
    if forced == "kind" or (not forced and docker_works()):
        return _start_kind(lock_dir)
    return _start_local(lock_dir)
