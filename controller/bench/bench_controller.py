"""Benchmark of kserve-stack-controller on a real API server (the local control plane).

Prints, as a table:

1. latency from creating an InferenceService (the start of its POST) to its Deployment
   existing (seen by a watch on Deployments), p50/p99 over N objects created one at a time,
   and the part of it after the POST returned (what the controller's reaction takes);
2. the floor: the API server's own create-to-watch latency for the same Deployment created
   directly, p50/p99 over N; our p50 as a ratio of it.
   Both are measured twice, the same way for ours and the floor: with a pause after each
   create (``--pace``, 250 ms: each create meets a control plane that finished the last one;
   the target is judged on this), and back to back. Back to back, the next create lands
   while the cluster still works on the last InferenceService: besides our four children it
   makes the cluster's own controllers write about a dozen objects (ReplicaSet, Pod, binding,
   the Service's IP address, Endpoints and EndpointSlice, the autoscaler's status, events),
   about 45 ms of API-server CPU, so on a two-core machine that figure measures a saturated
   API server rather than the latency of a create; it is printed as well;
3. the time to reconcile a backlog of M InferenceServices (created while the controller is
   stopped) until every Deployment exists (not until Ready: the kwok nodes hold 330 pods);
4. the time for a restarted controller to re-reconcile the M (every Deployment in place);
5. the controller's resident memory (VmRSS, VmHWM from /proc/<pid>/status) holding M.

The controller runs as a subprocess watching only the benchmark's namespaces; they are
deleted afterwards. Usage: ``python controller/bench/bench_controller.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import yaml
from kserve_stack_controller.kube import Kube
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
RUNTIMES = REPO / "controller" / "src" / "kserve_stack_controller" / "builtin_runtimes"
CONTROLLER = Path(sys.executable).parent / "kserve-stack-controller"
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
LABEL_ISVC = "serving.kserve.io/inferenceservice"

JsonDict = dict[str, Any]


def isvc(name: str) -> JsonDict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                    # Small, so that the kwok nodes (pods are only simulated) hold many.
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                }
            }
        },
    }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def wait_until(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class DeploymentWatch:
    """A watch on the Deployments of one namespace: the monotonic time each name first
    appeared (ADDED), in a background thread; reconnects when the server closes it."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.apps = cast(Any, client.AppsV1Api(kube.api_client))
        self.namespace = namespace
        self.first_seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._rv = self._relist()
        self._thread = threading.Thread(target=self._run, name="deployment-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self.apps.list_namespaced_deployment(
                    self.namespace,
                    watch=True,
                    resource_version=self._rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                    _preload_content=False,
                )
                buffer = b""
                for chunk in resp.stream(65536):
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if line.strip():
                            self._event(json.loads(line))
                    if self._stop.is_set():
                        break
                resp.release_conn()
            except Exception as err:  # a dropped watch: note it and reconnect
                if not self._stop.is_set():
                    log(f"deployment watch reconnecting after {type(err).__name__}: {err}")
                    time.sleep(0.5)

    def _event(self, event: JsonDict) -> None:
        now = time.monotonic()
        obj = event.get("object") or {}
        meta = obj.get("metadata") or {}
        if event.get("type") == "ERROR":  # 410 Gone: relist from now
            self._rv = self._relist()
            return
        if meta.get("resourceVersion"):
            self._rv = meta["resourceVersion"]
        if event.get("type") in ("ADDED", "MODIFIED") and meta.get("name"):
            with self.cond:
                self.first_seen.setdefault(meta["name"], now)
                self.cond.notify_all()

    def _relist(self) -> str:
        listing = self.kube.request("get", f"/apis/apps/v1/namespaces/{self.namespace}/deployments")
        now = time.monotonic()
        with self.cond:
            for item in listing.get("items") or []:
                self.first_seen.setdefault(item["metadata"]["name"], now)
            self.cond.notify_all()
        return str(listing["metadata"]["resourceVersion"])

    def wait_for(self, name: str, timeout: float) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.first_seen, timeout):
                raise TimeoutError(f"Deployment {name} did not appear within {timeout:.0f}s")
            return self.first_seen[name]

    def wait_count(self, names: set[str], timeout: float) -> float:
        """Time the last of ``names`` appeared."""
        with self.cond:
            if not self.cond.wait_for(lambda: names <= self.first_seen.keys(), timeout):
                missing = len(names - self.first_seen.keys())
                raise TimeoutError(f"{missing} Deployments missing after {timeout:.0f}s")
            return max(self.first_seen[n] for n in names)

    def stop(self) -> None:
        self._stop.set()


class Controller:
    """kserve-stack-controller as a subprocess watching ``namespaces``."""

    def __init__(self, kubeconfig: Path, namespaces: list[str], workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / f"controller-{int(time.time() * 1000)}.log"
        args = [str(CONTROLLER), "--kubeconfig", str(kubeconfig)]
        for ns in namespaces:
            args += ["--namespace", ns]
        args += ["--config-namespace", namespaces[0], "--health-host", "127.0.0.1",
                 "--health-port", str(self.port), "--log-level", "WARNING"]  # fmt: skip
        self.started = time.monotonic()
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def _get(self, path: str) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60) -> float:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError("controller exited:\n" + self.log_path.read_text()[-3000:])
            return self._get("/readyz") is not None

        wait_until("the controller's /readyz", ready, timeout)
        return time.monotonic() - self.started

    def reconciles(self) -> int:
        text = self._get("/metrics") or ""
        total = 0
        for line in text.splitlines():
            if line.startswith("kserve_stack_controller_reconciles_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def memory_kib(self) -> dict[str, int]:
        found = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Bench:
    def __init__(self, kubeconfig: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.kube = Kube.from_environment(str(kubeconfig))
        # Enough pooled connections for the parallel creates.
        pool = cast(Any, self.kube.api_client.rest_client).pool_manager
        pool.connection_pool_kw["maxsize"] = 16
        self.namespaces: list[str] = []

    def namespace(self, purpose: str) -> str:
        name = f"kss-bench-{purpose}-{secrets.token_hex(3)}"
        self.kube.request(
            "post",
            "/api/v1/namespaces",
            body={"metadata": {"name": name, "labels": {"kss-bench": "1"}}},
        )
        self.namespaces.append(name)
        return name

    def install_runtimes(self) -> None:
        for path in sorted(RUNTIMES.glob("*.yaml")):
            obj = yaml.safe_load(path.read_text())
            self.kube.apply(obj, "kss-bench")

    def create_isvc(self, namespace: str, name: str) -> None:
        self.kube.request(
            "post", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}", body=isvc(name)
        )

    def delete_namespace(self, name: str, wait: bool) -> None:
        with contextlib.suppress(ApiException):
            self.kube.request(
                "delete", f"/api/v1/namespaces/{name}", propagation_policy="Background"
            )

        def gone() -> bool:
            try:
                self.kube.request("get", f"/api/v1/namespaces/{name}")
            except ApiException as err:
                return bool(err.status == 404)
            return False

        if wait:
            wait_until(f"namespace {name} to be deleted", gone, timeout=600, interval=1)

    # ------------------------------------------------------------------ phases

    def latency(
        self, count: int, pause: float
    ) -> tuple[list[float], list[float], list[float], JsonDict]:
        """(controller latencies, their part after the InferenceService's create returned,
        API-server floor latencies, one controller-built Deployment), ``pause`` seconds
        after each create."""
        ns = self.namespace("latency")
        watch = DeploymentWatch(self.kube, ns)
        controller = Controller(self.kubeconfig, [ns], self.workdir)
        try:
            controller.wait_ready()
            for i in range(3):  # warm-up: connections, caches, first imports
                self.create_isvc(ns, f"warmup-{i}")
                watch.wait_for(f"warmup-{i}-predictor", 60)
                time.sleep(pause)
            ours, after_create = [], []
            for i in range(count):
                name = f"lat-{i:04d}"
                started = time.monotonic()
                self.create_isvc(ns, name)
                created = time.monotonic()
                seen = watch.wait_for(f"{name}-predictor", 60)
                ours.append(seen - started)
                after_create.append(seen - created)
                time.sleep(pause)
            built = self.kube.get("Deployment", "lat-0000-predictor", ns)
            assert built is not None
        finally:
            controller.stop()
        # The floor: the same Deployment, created directly (no owner, no controller label).
        floor = []
        for i in range(count):
            name = f"floor-{i:04d}"
            body = copy.deepcopy(built)
            meta = body["metadata"]
            body["metadata"] = {
                "name": name,
                "labels": {k: v for k, v in meta["labels"].items() if k != LABEL_ISVC},
                "annotations": meta.get("annotations") or {},
            }
            body.pop("status", None)
            started = time.monotonic()
            self.kube.request("post", f"/apis/apps/v1/namespaces/{ns}/deployments", body=body)
            floor.append(watch.wait_for(name, 60) - started)
            time.sleep(pause)
        watch.stop()
        self.delete_namespace(ns, wait=True)
        return ours, after_create, floor, built

    def backlog(self, count: int) -> JsonDict:
        ns = self.namespace("scale")
        names = [f"isvc-{i:04d}" for i in range(count)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: self.create_isvc(ns, n), names))
        log(f"created {count} InferenceServices in {ns}; starting the controller")
        watch = DeploymentWatch(self.kube, ns)
        figures: JsonDict = {}
        controller = Controller(self.kubeconfig, [ns], self.workdir)
        try:
            figures["startup_s"] = controller.wait_ready()
            last = watch.wait_count({f"{n}-predictor" for n in names}, timeout=900)
            figures["all_deployments_s"] = last - controller.started
            time.sleep(5)  # let the trailing Deployment-status reconciles drain
            figures["memory_kib"] = controller.memory_kib()
            figures["cpu_s"] = controller.cpu_seconds()
            figures["reconciles"] = controller.reconciles()
        finally:
            controller.stop()
        # A restart with everything in place: the resume handlers re-reconcile each one.
        controller = Controller(self.kubeconfig, [ns], self.workdir)
        try:
            controller.wait_ready()
            wait_until(
                f"{count} resume reconciles",
                lambda: controller.reconciles() >= count,
                timeout=900,
                interval=0.5,
            )
            figures["resync_s"] = time.monotonic() - controller.started
            figures["resync_memory_kib"] = controller.memory_kib()
        finally:
            controller.stop()
        watch.stop()
        return figures

    def cleanup(self) -> None:
        for ns in self.namespaces:
            self.delete_namespace(ns, wait=False)


def table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_controller.py",
        description="Benchmark kserve-stack-controller against a running API server and "
        "print a table (latency vs the API server's floor, backlog time, memory).",
    )
    cluster_dir = Path(os.environ.get("KSS_CLUSTER_DIR", REPO / ".cluster"))
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(os.environ.get("KUBECONFIG", cluster_dir / "kubeconfig")),
        help="cluster to use (default: $KUBECONFIG, else the kubeconfig of the local control "
        "plane that make bench-controller starts: $KSS_CLUSTER_DIR, default .cluster/)",
    )
    parser.add_argument(
        "--latency-count", type=int, default=200,
        help="InferenceServices created one at a time for the latency (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--scale-count", type=int, default=1000,
        help="InferenceServices of the backlog and memory figures (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--pace", type=float, default=0.25,
        help="seconds of pause after each create of the paced latency runs, ours and the "
        "floor alike; the target is judged on them (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not CONTROLLER.is_file():
        parser.error(f"{CONTROLLER} not found: run `uv sync --all-packages` first")

    with tempfile.TemporaryDirectory(prefix="kss-bench-") as tmp:
        bench = Bench(args.kubeconfig, Path(tmp))
        try:
            bench.install_runtimes()
            log(
                f"latency: {args.latency_count} InferenceServices, one at a time, "
                f"{args.pace * 1000:.0f} ms apart"
            )
            paced = bench.latency(args.latency_count, args.pace)
            log(f"latency: {args.latency_count} InferenceServices, back to back")
            rushed = bench.latency(args.latency_count, 0.0)
            log(f"backlog: {args.scale_count} InferenceServices")
            scale = bench.backlog(args.scale_count)
        except BaseException:
            for path in sorted(Path(tmp).glob("controller-*.log")):
                print(f"----- {path.name} (last lines)", file=sys.stderr)
                print(path.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            bench.cleanup()

    ms = 1000.0
    n, m = args.latency_count, args.scale_count
    pace = f"{args.pace * 1000:.0f} ms apart"
    rows = [("figure", "value", "target", "verdict")]
    figures: JsonDict = {}
    for label, (ours, after_create, floor, _) in ((pace, paced), ("back to back", rushed)):
        p50, p99 = percentile(ours, 50) * ms, percentile(ours, 99) * ms
        f50, f99 = percentile(floor, 50) * ms, percentile(floor, 99) * ms
        after = percentile(after_create, 50) * ms
        ratio = p50 / f50 if f50 else float("inf")
        judged = label == pace
        rows += [
            (f"ISVC create -> Deployment, {label}, p50 / p99 (n={n})",
             f"{p50:.1f} / {p99:.1f} ms", "", ""),
            ("  of which after the create returned, p50", f"{after:.1f} ms", "", ""),
            (f"API server floor (Deployment create -> watch), {label}, p50 / p99",
             f"{f50:.1f} / {f99:.1f} ms", "", ""),
            (f"our p50 / floor p50, {label}", f"{ratio:.2f}x",
             "<= 3x" if judged else "", verdict(ratio <= 3) if judged else ""),
        ]  # fmt: skip
        key = "" if judged else "back_to_back_"
        figures |= {
            f"{key}latency_p50_ms": p50, f"{key}latency_p99_ms": p99,
            f"{key}after_create_p50_ms": after, f"{key}floor_p50_ms": f50,
            f"{key}floor_p99_ms": f99, f"{key}ratio_p50": ratio,
        }  # fmt: skip
    rss = scale["memory_kib"].get("VmRSS", 0) / 1024
    hwm = scale["memory_kib"].get("VmHWM", 0) / 1024
    rows += [
        ("controller start -> /readyz", f"{scale['startup_s']:.1f} s", "", ""),
        (
            f"backlog of {m}: start -> every Deployment exists",
            f"{scale['all_deployments_s']:.1f} s",
            "< 120 s",
            verdict(scale["all_deployments_s"] < 120),
        ),
        (f"restart with {m} in place: -> {m} reconciles", f"{scale['resync_s']:.1f} s", "", ""),
        (f"controller VmRSS holding {m}", f"{rss:.0f} MB", "< 250 MB", verdict(rss < 250)),
        (f"controller VmHWM (peak) holding {m}", f"{hwm:.0f} MB", "", ""),
        ("controller CPU time for the backlog", f"{scale['cpu_s']:.1f} s", "", ""),
        ("reconciles for the backlog", str(scale["reconciles"]), "", ""),
    ]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({**figures, **scale}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
