#!/usr/bin/env python3
"""A real Kubernetes control plane on this machine, without Docker.

Runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler as local
processes, plus kwok, which plays the kubelet for a few fake nodes (two CPU
nodes and one GPU node) so that scheduled Pods turn Running and Ready. Every
API behaviour is the real one (schemas, CEL, admission webhooks, server-side
apply, watches, garbage collection); only the containers do not exist.

All state (certificates, etcd data, logs, pid files, kubeconfig) lives in one
directory, ``$KSS_CLUSTER_DIR`` (default ``<repo>/.cluster``). Binaries come
from ``hack/cluster/build-binaries.sh`` (built once, cached by version).

Standard library only, so it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VERSIONS_FILE = HERE / "versions.env"
BUILD_SCRIPT = HERE / "build-binaries.sh"

# Dependency CRD folders installed from $KSS_CRDS_DIR (reference-kserve is not one:
# the project's own CRDs come from charts/kserve-stack/files/crds/).
DEPENDENCY_CRD_DIRS = (
    "gateway-api",
    "gateway-api-inference-extension",
    "lws",
    "keda",
    "envoy-gateway",
    "envoy-ai-gateway",
    "prometheus-operator",
    "gpu-operator",
    "llm-d-router",
)
PROJECT_CRDS = REPO / "charts" / "kserve-stack" / "files" / "crds"

# Processes in start order; stopped in reverse order.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"
CLUSTER_NAME = "kss-local"

DEFAULT_PORTS = {
    "api": 16443,
    "etcd": 12379,
    "etcd_peer": 12380,
    "controller_manager": 11257,
    "scheduler": 11259,
}


def log(msg: str) -> None:
    print(f"[local-cluster] {msg}", file=sys.stderr, flush=True)


class ClusterError(RuntimeError):
    """A failure that is reported to the user as one clear line (exit code 1)."""


# --------------------------------------------------------------------------- config


def read_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


@dataclass
class Ports:
    api: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int


@dataclass
class Layout:
    """Where everything of one cluster lives."""

    state: Path
    cache: Path

    @property
    def bin(self) -> Path:
        return self.cache / "bin"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def info(self) -> Path:
        return self.state / "cluster.json"

    @property
    def lock(self) -> Path:
        return self.state / ".lock"


def binary_paths(layout: Layout) -> dict[str, Path]:
    v = read_versions()
    k = v["KUBERNETES_VERSION"]
    return {
        "etcd": layout.bin / f"etcd-{v['ETCD_VERSION']}",
        "kube-apiserver": layout.bin / f"kube-apiserver-{k}",
        "kube-controller-manager": layout.bin / f"kube-controller-manager-{k}",
        "kube-scheduler": layout.bin / f"kube-scheduler-{k}",
        "kwok": layout.bin / f"kwok-{v['KWOK_VERSION']}",
        "helm3": layout.bin / f"helm-{v['HELM3_VERSION']}",
        "helm4": layout.bin / f"helm4-npm-{v['HELM4_NPM_VERSION']}",
        "kubectl": layout.bin / f"kubectl-npm-{v['HELM4_NPM_VERSION']}",
    }


def kubectl_path(layout: Layout) -> str:
    """kubectl 1.35 from the cache (within the API server's version skew), else PATH."""
    cached = binary_paths(layout)["kubectl"]
    if cached.is_file():
        return str(cached)
    found = shutil.which("kubectl")
    if not found:
        raise ClusterError("kubectl not found: run hack/cluster/build-binaries.sh or install it")
    return found


def ensure_binaries(layout: Layout) -> dict[str, Path]:
    paths = binary_paths(layout)
    needed = [name for name in (*COMPONENTS, "kubectl") if not paths[name].is_file()]
    if needed:
        log(f"missing binaries {', '.join(needed)}: building them (cached afterwards)")
        env = {**os.environ, "KSS_CACHE_DIR": str(layout.cache)}
        only = ",".join("helm4" if n == "kubectl" else n for n in needed)
        result = subprocess.run([str(BUILD_SCRIPT), "--only", only], env=env, check=False)
        if result.returncode != 0:
            raise ClusterError(f"building {only} failed (exit {result.returncode}), see above")
    for name in COMPONENTS:
        if not paths[name].is_file():
            raise ClusterError(f"{paths[name]} is still missing after the build")
    return paths


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _ec_key(pki: Path, name: str) -> None:
    # P-256 keys: as good as RSA-2048 for a test cluster, and generated instantly.
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name, cwd=pki)  # fmt: skip


def _issue(
    pki: Path, name: str, subject: str, *, server_sans: str | None = None, ca: str = "ca"
) -> None:
    """Create <name>.key and a <name>.crt signed by the CA <ca>.crt."""
    ext = pki / f"{name}.ext"
    if server_sans:
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            f"subjectAltName={server_sans}\n"
        )
    else:
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=clientAuth\n"
        )
    _ec_key(pki, f"{name}.key")
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "365", "-sha256", "-extfile", ext.name,
        "-out", f"{name}.crt", cwd=pki,
    )  # fmt: skip
    (pki / f"{name}.csr").unlink()
    ext.unlink()


# Client identities: file name -> subject. system:masters for the admin and kwok
# (kwok patches node and pod status of every node it manages).
CLIENTS = {
    "admin": "/O=system:masters/CN=kubernetes-admin",
    "kwok": "/O=system:masters/CN=kwok",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
}


def generate_pki(pki: Path) -> None:
    if (pki / "done").exists():
        return
    log("generating certificates (CA, API server, service-account key, clients)")
    pki.mkdir(parents=True, exist_ok=True)
    # The cluster CA, and the front-proxy CA that authenticates the API server to
    # aggregated API servers (and lets components check request headers).
    for ca in ("ca", "front-proxy-ca"):
        _ec_key(pki, f"{ca}.key")
        _openssl(
            "req", "-x509", "-new", "-key", f"{ca}.key", "-sha256", "-days", "3650",
            "-subj", f"/CN={CLUSTER_NAME}-{ca}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", f"{ca}.crt", cwd=pki,
        )  # fmt: skip
    _issue(pki, "front-proxy-client", "/CN=front-proxy-client", ca="front-proxy-ca")
    sans = ",".join(
        [
            "IP:127.0.0.1",
            "IP:10.96.0.1",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    _issue(pki, "apiserver", "/CN=kube-apiserver", server_sans=sans)
    for name, subject in CLIENTS.items():
        _issue(pki, name, subject)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)
    (pki / "done").write_text("ok\n")


def write_kubeconfig(path: Path, server: str, pki: Path, client: str) -> None:
    # JSON is valid YAML: no YAML library needed.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": client,
                "user": {
                    "client-certificate": str(pki / f"{client}.crt"),
                    "client-key": str(pki / f"{client}.key"),
                },
            }
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": client}}],
        "current-context": CLUSTER_NAME,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- API access


class Api:
    """A tiny HTTPS client for the API server, authenticated with the admin cert."""

    def __init__(self, server: str, pki: Path) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        req = urllib.request.Request(self.server + path)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            return 0, str(err)

    def get_json(self, path: str) -> dict[str, Any]:
        code, body = self.get(path)
        if code != 200:
            raise ClusterError(f"GET {path} -> {code}: {body[:300]}")
        result: dict[str, Any] = json.loads(body)
        return result


# --------------------------------------------------------------------------- processes


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def processes_of(layout: Layout) -> dict[int, list[str]]:
    """Every live process whose command line names this cluster's state directory.

    Each component is started with paths inside the state directory (data dir,
    certificates, kubeconfig), so this finds ours, and only ours, even when a
    pid file is lost.
    """
    marker = str(layout.state) + "/"  # not a sibling such as .cluster2/
    me = os.getpid()
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        args = cmdline(pid)
        if not args or not pid_alive(pid):
            continue
        exe = Path(args[0]).name
        if any(exe.startswith(c) for c in COMPONENTS) and any(marker in a for a in args[1:]):
            found[pid] = args
    return found


def read_pid(layout: Layout, name: str) -> int | None:
    try:
        return int((layout.pids / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def start_process(layout: Layout, name: str, args: list[str]) -> int:
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.pids.mkdir(parents=True, exist_ok=True)
    log_file = layout.logs / f"{name}.log"
    with log_file.open("ab") as out:
        out.write(f"\n==== {time.strftime('%F %T')} starting: {' '.join(args)}\n".encode())
        out.flush()
        proc = subprocess.Popen(  # detached: the cluster outlives this command
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=layout.state,
        )
    (layout.pids / f"{name}.pid").write_text(f"{proc.pid}\n")
    log(f"started {name} (pid {proc.pid}, log {log_file})")
    return proc.pid


def log_tail(layout: Layout, name: str, lines: int = 25) -> str:
    try:
        text = (layout.logs / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def ensure_alive(layout: Layout, name: str) -> None:
    pid = read_pid(layout, name)
    if pid is None or not pid_alive(pid):
        raise ClusterError(
            f"{name} exited during start-up; last lines of {layout.logs / (name + '.log')}:\n"
            + log_tail(layout, name)
        )


def stop_pid(pid: int, name: str, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        log(f"{name} (pid {pid}) ignored SIGTERM for {grace:.0f}s: sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)


# --------------------------------------------------------------------------- component args


def component_args(layout: Layout, bins: dict[str, Path], ports: Ports) -> dict[str, list[str]]:
    pki = layout.pki
    st = layout.state
    etcd_url = f"http://127.0.0.1:{ports.etcd}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    kcm_kc = str(st / "controller-manager.kubeconfig")
    sched_kc = str(st / "scheduler.kubeconfig")
    return {
        "etcd": [
            str(bins["etcd"]),
            "--name=kss",
            f"--data-dir={st / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kss={peer_url}",
            "--listen-metrics-urls=",
            "--unsafe-no-fsync=true",  # a throw-away test cluster: speed over durability
            "--quota-backend-bytes=2147483648",
            "--log-level=warn",
        ],
        "kube-apiserver": [
            str(bins["kube-apiserver"]),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.api}",
            # Loopback addresses may not be published as endpoints: keep none.
            "--endpoint-reconciler-type=none",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,"
            "ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        "kube-controller-manager": [
            str(bins["kube-controller-manager"]),
            f"--kubeconfig={kcm_kc}",
            f"--authentication-kubeconfig={kcm_kc}",
            f"--authorization-kubeconfig={kcm_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.controller_manager}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--cluster-name={CLUSTER_NAME}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
            "--v=1",
        ],
        "kube-scheduler": [
            str(bins["kube-scheduler"]),
            f"--kubeconfig={sched_kc}",
            f"--authentication-kubeconfig={sched_kc}",
            f"--authorization-kubeconfig={sched_kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports.scheduler}",
            "--leader-elect=false",
            "--profiling=false",
            "--v=1",
        ],
        "kwok": [
            str(bins["kwok"]),
            f"--kubeconfig={st / 'kwok.kubeconfig'}",
            f"--config={st / 'kwok.yaml'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
            "--v=WARN",  # INFO logs every lease renewal
        ],
    }


# kwok without stage configs uses its built-in "fast" stages: nodes turn Ready and
# keep a lease, pods turn Running/Ready, finish (Jobs) and are removed on delete.
KWOK_CONFIG = {
    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
    "kind": "KwokConfiguration",
    "options": {},
}


def node_manifests() -> list[dict[str, Any]]:
    def node(
        name: str,
        ip: str,
        resources: dict[str, str],
        labels: dict[str, str],
        taints: list[dict[str, str]],
    ) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    **labels,
                },
            },
            "spec": {"taints": taints} if taints else {},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "Hostname", "address": name},
                ],
            },
        }

    cpu = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
    gpu = {**cpu, "cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"}
    return [
        node("kwok-cpu-0", "10.240.0.10", cpu, {}, []),
        node("kwok-cpu-1", "10.240.0.11", cpu, {}, []),
        node(
            "kwok-gpu-0",
            "10.240.0.20",
            gpu,
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": "8",
                "nvidia.com/gpu.product": "NVIDIA-H200",
            },
            [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        ),
    ]


# --------------------------------------------------------------------------- steps


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def kubectl(layout: Layout, *args: str, timeout: float = 120) -> str:
    cmd = [kubectl_path(layout), f"--kubeconfig={layout.kubeconfig}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args[:3])} failed:\n{result.stderr.strip()}")
    return result.stdout


def crd_sources(crds_dir: Path, project: bool = True) -> list[Path]:
    sources = []
    for sub in DEPENDENCY_CRD_DIRS:
        folder = crds_dir / sub
        if not folder.is_dir():
            raise ClusterError(f"CRD folder {folder} is missing (set KSS_CRDS_DIR or --crds-dir)")
        sources.append(folder)
    if project and PROJECT_CRDS.is_dir() and any(PROJECT_CRDS.glob("*.y*ml")):
        sources.append(PROJECT_CRDS)
    return sources


def install_crds(
    layout: Layout, api: Api, crds_dir: Path, timeout: float, project: bool = True
) -> int:
    sources = crd_sources(crds_dir, project)
    log(f"applying CRDs from {', '.join(s.name for s in sources)} (server-side)")
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=kss-local-cluster"]
    for src in sources:
        # Manifests only: a kustomization.yaml beside them is not an object to apply.
        for path in sorted(src.glob("*.y*ml")):
            if path.stem != "kustomization":
                args += ["-f", str(path)]
    kubectl(layout, *args, timeout=timeout)

    def all_established() -> list[str] | None:
        items = api.get_json("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        pending = [
            crd["metadata"]["name"]
            for crd in items
            if not any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in (crd.get("status") or {}).get("conditions") or []
            )
        ]
        return None if pending else [crd["metadata"]["name"] for crd in items]

    try:
        names = wait_for("CRDs to be Established", all_established, timeout)
    except ClusterError:
        raise ClusterError("some CRDs are not Established: see `kubectl get crd`") from None
    log(f"{len(names)} CRDs Established")
    return len(names)


def nodes_ready(api: Api, expected: set[str]) -> bool:
    items = api.get_json("/api/v1/nodes")["items"]
    ready = {
        n["metadata"]["name"]
        for n in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or []
        )
    }
    return expected <= ready


@dataclass
class Info:
    server: str
    kubeconfig: str
    state_dir: str
    ports: dict[str, int]
    binaries: dict[str, str]
    kubernetes_version: str
    started_at: float


def load_info(layout: Layout) -> Info | None:
    try:
        return Info(**json.loads(layout.info.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def health(layout: Layout) -> tuple[bool, list[str]]:
    """(healthy, problems) of the cluster recorded in the state directory."""
    info = load_info(layout)
    if info is None:
        return False, ["no cluster recorded in " + str(layout.state)]
    problems = []
    for name in COMPONENTS:
        pid = read_pid(layout, name)
        if pid is None or not pid_alive(pid):
            problems.append(f"{name} is not running")
    if not problems:
        code, body = Api(info.server, layout.pki).get("/readyz")
        if code != 200:
            problems.append(f"{info.server}/readyz -> {code or 'unreachable'} {body[:200]}")
    return not problems, problems


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    layout.state.mkdir(parents=True, exist_ok=True)
    with layout.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def usage_text(layout: Layout, info: Info) -> str:
    bins = binary_paths(layout)
    default_state = Path(os.environ.get("KSS_CLUSTER_DIR", REPO / ".cluster")).resolve()
    stop = (
        "make cluster-down"
        if layout.state == default_state
        else f"python3 {HERE / 'local_cluster.py'} --state-dir {layout.state} down"
    )

    def where(name: str) -> str:
        path = bins[name]
        return str(path) if path.is_file() else f"{path} (not built: make cluster-binaries)"

    return (
        f"Kubernetes {info.kubernetes_version} API server at {info.server}\n"
        f"  export KUBECONFIG={info.kubeconfig}\n"
        f"  kubectl get nodes     (kubectl 1.35: {where('kubectl')})\n"
        f"  helm 3: {where('helm3')}\n"
        f"  helm 4: {where('helm4')}\n"
        f"  logs: {layout.logs}/\n"
        f"  stop: {stop}"
    )


def cmd_up(layout: Layout, args: argparse.Namespace) -> int:
    started = time.monotonic()
    with locked(layout):
        healthy, problems = health(layout)
        info = load_info(layout)
        if healthy and info is not None:
            log("a healthy cluster is already running: reusing it")
        else:
            if info is not None or processes_of(layout):
                why = "; ".join(problems)
                log(f"found a broken cluster ({why}): stopping it and starting afresh")
                stop_all(layout)
                clean_state(layout)
            info = start_cluster(layout, args)
        api = Api(info.server, layout.pki)
        nodes_file = str(layout.state / "nodes.json")
        apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=kss-local-cluster"]
        kubectl(layout, *apply, "-f", nodes_file)
        expected = {n["metadata"]["name"] for n in node_manifests()}
        wait_for("kwok nodes to be Ready", lambda: nodes_ready(api, expected), args.timeout)
        log(f"nodes Ready: {', '.join(sorted(expected))}")
        if not args.no_crds:
            install_crds(layout, api, args.crds_dir, args.timeout, not args.no_project_crds)
    log(f"cluster up in {time.monotonic() - started:.1f}s")
    print(usage_text(layout, info))
    return 0


def start_cluster(layout: Layout, args: argparse.Namespace) -> Info:
    ports = Ports(
        api=args.api_port,
        etcd=args.etcd_port,
        etcd_peer=args.etcd_peer_port,
        controller_manager=args.controller_manager_port,
        scheduler=args.scheduler_port,
    )
    busy = [f"{k}={p}" for k, p in asdict(ports).items() if not port_free(p)]
    if busy:
        raise ClusterError(
            f"ports in use on 127.0.0.1: {', '.join(busy)}. Another cluster or program holds"
            " them: stop it, or pick other ports (see --help)"
        )
    bins = ensure_binaries(layout)
    for sub in (layout.logs, layout.pids):
        sub.mkdir(parents=True, exist_ok=True)
    generate_pki(layout.pki)
    server = f"https://127.0.0.1:{ports.api}"
    write_kubeconfig(layout.kubeconfig, server, layout.pki, "admin")
    write_kubeconfig(layout.state / "kwok.kubeconfig", server, layout.pki, "kwok")
    kcm_kc = layout.state / "controller-manager.kubeconfig"
    write_kubeconfig(kcm_kc, server, layout.pki, "controller-manager")
    write_kubeconfig(layout.state / "scheduler.kubeconfig", server, layout.pki, "scheduler")
    (layout.state / "kwok.yaml").write_text(json.dumps(KWOK_CONFIG, indent=2) + "\n")
    nodes = {"apiVersion": "v1", "kind": "List", "items": node_manifests()}
    (layout.state / "nodes.json").write_text(json.dumps(nodes, indent=2) + "\n")
    argv = component_args(layout, bins, ports)
    api = Api(server, layout.pki)

    start_process(layout, "etcd", argv["etcd"])

    def etcd_healthy() -> bool:
        ensure_alive(layout, "etcd")
        try:
            url = f"http://127.0.0.1:{ports.etcd}/health"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    wait_for("etcd /health", etcd_healthy, args.timeout)
    start_process(layout, "kube-apiserver", argv["kube-apiserver"])

    def api_ready() -> bool:
        ensure_alive(layout, "kube-apiserver")
        return api.get("/readyz", timeout=3)[0] == 200

    wait_for("kube-apiserver /readyz", api_ready, args.timeout)
    log("kube-apiserver is ready")
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        start_process(layout, name, argv[name])
    info = Info(
        server=server,
        kubeconfig=str(layout.kubeconfig),
        state_dir=str(layout.state),
        ports=asdict(ports),
        binaries={k: str(v) for k, v in bins.items()},
        kubernetes_version=read_versions()["KUBERNETES_VERSION"],
        started_at=time.time(),
    )
    layout.info.write_text(json.dumps(asdict(info), indent=2) + "\n")
    time.sleep(0.5)
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        ensure_alive(layout, name)
    return info


def stop_all(layout: Layout) -> list[str]:
    """Stop every process of this cluster; returns what was stopped."""
    stopped = []
    for name in reversed(COMPONENTS):
        pid = read_pid(layout, name)
        if pid is None or not pid_alive(pid):
            continue
        args = cmdline(pid)
        if not any(str(layout.state) + "/" in a for a in args):
            log(f"pid file of {name} names pid {pid}, which is not ours now: leaving it")
            continue
        stop_pid(pid, name)
        stopped.append(f"{name} ({pid})")
    # Anything of ours without (or with a stale) pid file.
    for pid, args in processes_of(layout).items():
        name = Path(args[0]).name
        log(f"stopping leftover {name} (pid {pid})")
        stop_pid(pid, name)
        stopped.append(f"{name} ({pid}, leftover)")
    return stopped


def clean_state(layout: Layout) -> None:
    if not layout.state.exists():
        return
    for entry in layout.state.iterdir():
        if entry.name == layout.lock.name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def cmd_down(layout: Layout, args: argparse.Namespace) -> int:
    if not layout.state.exists():
        log(f"no cluster state in {layout.state}: nothing to stop")
        stopped: list[str] = []
    else:
        with locked(layout):
            stopped = stop_all(layout)
            if not args.keep_state:
                clean_state(layout)
        log("stopped " + (", ".join(stopped) if stopped else "nothing (no process was running)"))
        if not args.keep_state:
            with contextlib.suppress(OSError):
                layout.lock.unlink()
                layout.state.rmdir()
            log(f"removed {layout.state}")
    if args.verify:
        left = processes_of(layout)
        if left:
            for pid, argv in left.items():
                log(f"STILL RUNNING: pid {pid}: {' '.join(argv)[:200]}")
            log(f"verify: FAILED, {len(left)} process(es) of the cluster remain")
            return 1
        log("verify: no process of the cluster remains")
    return 0


def cmd_status(layout: Layout, args: argparse.Namespace) -> int:
    info = load_info(layout)
    healthy, problems = health(layout)
    report: dict[str, Any] = {
        "state_dir": str(layout.state),
        "healthy": healthy,
        "problems": problems,
        "processes": {
            name: {"pid": pid, "alive": pid is not None and pid_alive(pid)}
            for name in COMPONENTS
            for pid in [read_pid(layout, name)]
        },
    }
    if info is not None:
        report.update(asdict(info))
    if healthy and info is not None:
        api = Api(info.server, layout.pki)
        nodes = api.get_json("/api/v1/nodes")["items"]
        report["nodes"] = {
            n["metadata"]["name"]: next(
                (
                    c["status"]
                    for c in (n.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready"
                ),
                "Unknown",
            )
            for n in nodes
        }
        crds = api.get_json("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        report["crds"] = len(crds)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        state = "running and ready" if healthy else "not running"
        print(f"local cluster in {layout.state}: {state}")
        for problem in problems:
            print(f"  - {problem}")
        for name, proc in report["processes"].items():
            alive = "alive" if proc["alive"] else "stopped"
            print(f"  {name:<24} pid {proc['pid'] or '-':<8} {alive}")
        if "nodes" in report:
            for node, ready in report["nodes"].items():
                print(f"  node {node:<19} Ready={ready}")
            print(f"  CRDs: {report['crds']}")
            print(usage_text(layout, info))  # type: ignore[arg-type]
    return 0 if healthy else 3


def env_default(name: str, default: Any) -> Any:
    value = os.environ.get(name)
    if value is None:
        return default
    return type(default)(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="local_cluster.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("KSS_CLUSTER_DIR", REPO / ".cluster")),
        help="directory for all cluster state: certs, etcd data, logs, pids, kubeconfig"
        " (env KSS_CLUSTER_DIR)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack")),
        help="cache of the built binaries (env KSS_CACHE_DIR)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="start the cluster (reuses a healthy running one)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    port_help = "127.0.0.1 port of {} (env {})"
    for flag, key, what in (
        ("--api-port", "api", "the API server (HTTPS)"),
        ("--etcd-port", "etcd", "etcd's client URL"),
        ("--etcd-peer-port", "etcd_peer", "etcd's peer URL"),
        ("--controller-manager-port", "controller_manager", "kube-controller-manager's /healthz"),
        ("--scheduler-port", "scheduler", "kube-scheduler's /healthz"),
    ):
        env = "KSS_" + key.upper() + "_PORT"
        up.add_argument(
            flag,
            type=int,
            default=env_default(env, DEFAULT_PORTS[key]),
            help=port_help.format(what, env),
        )
    up.add_argument(
        "--crds-dir",
        type=Path,
        default=Path(os.environ.get("KSS_CRDS_DIR", REPO.parent / "shared" / "crds")),
        help="folder holding the dependency CRDs, one subfolder per project (env KSS_CRDS_DIR)",
    )
    up.add_argument("--no-crds", action="store_true", help="do not install any CRD")
    up.add_argument(
        "--no-project-crds",
        action="store_true",
        help="install the dependencies' CRDs but not serving.kserve.io's (a cluster for "
        "installing the chart, which brings them)",
    )
    up.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for each start-up step"
    )

    down = sub.add_parser("down", help="stop every process of the cluster and delete its state")
    down.add_argument(
        "--verify",
        action="store_true",
        help="afterwards, exit 1 if any process of the cluster is still running",
    )
    down.add_argument(
        "--keep-state", action="store_true", help="stop the processes but keep the state directory"
    )

    status = sub.add_parser(
        "status", help="report processes, readiness, nodes and CRDs (exit 3 if not running)"
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    layout = Layout(state=args.state_dir.resolve(), cache=args.cache_dir.resolve())
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return handlers[args.command](layout, args)
    except ClusterError as err:
        log(f"error: {err}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
