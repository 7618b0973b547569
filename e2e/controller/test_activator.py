"""Scale from zero on a real API server: ``kserve-stack-activator`` (a local process) holds a
request for a Deployment at 0 replicas, and forwards it once the scaled-up pod is Ready.

The Deployment, its Service and the EndpointSlice (written by kube-controller-manager from
the pod kwok makes Ready) are real; only the container does not run. The test's one trick
is where the endpoint lives: ``--connect-to *:8080=127.0.0.1:PORT`` sends what the
EndpointSlice names (the simulated pod's IP, port 8080) to a small HTTP server on loopback.
The test stands in for KEDA by scaling the Deployment itself (``--wake metric``), and checks
that ``--wake scale`` scales it without help.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kss_e2e import Cluster, Kube, answers, free_ports, wait_for

pytestmark = pytest.mark.control_plane

ACTIVATOR = Path(sys.executable).parent / "kserve-stack-activator"
CONTAINER_PORT = 8080


class _Backend(BaseHTTPRequestHandler):
    """The model server the simulated pod stands for: echoes what reached it."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = json.dumps({
            "served_by": "backend", "path": self.path, "body": body.decode(),
            "target_header": self.headers.get("x-kserve-stack-target"),
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@dataclass
class Activator:
    url: str
    metrics_url: str
    log: Path

    def metric(self, name: str, namespace: str, service: str) -> float:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            text = r.read().decode()
        labels = f'{{namespace="{namespace}",service="{service}"}}'
        for line in text.splitlines():
            if line.startswith(name + labels):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def _start_activator(cluster: Cluster, namespace: str, backend: int, work: Path,
                     *extra: str) -> tuple[subprocess.Popen[bytes], Activator]:  # fmt: skip
    port, metrics_port = free_ports(2)
    log = work / f"activator-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ACTIVATOR), "--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace,
             "--host", "127.0.0.1", "--port", str(port), "--metrics-host", "127.0.0.1",
             "--metrics-port", str(metrics_port), "--hold-timeout", "60",
             "--connect-to", f"*:{CONTAINER_PORT}=127.0.0.1:{backend}", *extra],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip

    url = f"http://127.0.0.1:{metrics_port}/readyz"
    wait_for("the activator to list EndpointSlices",
             lambda: answers(process, log, url, "activator"), timeout=30)  # fmt: skip
    return process, Activator(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", log
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def activator(cluster: Cluster, namespace: str, backend: int,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Activator]:  # fmt: skip
    process, handle = _start_activator(
        cluster, namespace, backend, tmp_path_factory.mktemp("activator")
    )
    try:
        yield handle
    finally:
        _stop(process)
        if os.environ.get("KSS_E2E_SHOW_CONTROLLER_LOG") == "1":
            print(handle.log.read_text())


def _component(kube: Kube, namespace: str, isvc: str) -> str:
    """A predictor as the controller builds it: a Deployment at 0 replicas and its Service."""
    name = f"{isvc}-predictor"
    labels = {"serving.kserve.io/inferenceservice": isvc, "component": "predictor"}
    pod_labels = {"app": f"isvc.{name}"}
    kube.apply([
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "labels": labels},
         "spec": {"replicas": 0, "selector": {"matchLabels": pod_labels},
                  "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [
                      {"name": "kserve-container", "image": "example.com/model:1",
                       "ports": [{"containerPort": CONTAINER_PORT}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
         "spec": {"selector": pod_labels, "ports": [
             {"name": "http", "port": 80, "targetPort": CONTAINER_PORT}]}},
    ], namespace)  # fmt: skip
    return name


def _post(url: str, headers: dict[str, str], body: bytes = b'{"instances": [[1, 2]]}',
          timeout: float = 90) -> tuple[int, dict[str, Any]]:  # fmt: skip
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class _Held(threading.Thread):
    """A request sent in the background; its answer lands in ``result``."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.result: tuple[int, dict[str, Any]] | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = _post(self.url, self.headers)
        except BaseException as err:
            self.error = err
        self.seconds = time.monotonic() - started


def _ready_endpoints(kube: Kube, namespace: str, service: str) -> int:
    slices = kube.resource("discovery.k8s.io/v1", "EndpointSlice").get(
        namespace=namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return sum(
        1 for s in slices.items for e in (s.endpoints or [])
        if (e.conditions or {}).get("ready") is not False
    )  # fmt: skip


def test_request_at_zero_is_held_until_a_replica_is_ready(
    kube: Kube, namespace: str, activator: Activator
) -> None:
    service = _component(kube, namespace, "cold")
    assert _ready_endpoints(kube, namespace, service) == 0
    held = _Held(f"{activator.url}/v1/models/cold:predict",
                 {"x-kserve-stack-target": f"{namespace}/{service}",
                  "Content-Type": "application/json"})  # fmt: skip
    held.start()
    pending = "kserve_stack_activator_pending_requests"
    wait_for("the activator to hold the request",
             lambda: activator.metric(pending, namespace, service) == 1, timeout=30)  # fmt: skip
    time.sleep(1.0)
    assert held.is_alive() and held.result is None, "the request was answered at 0 replicas"

    # KEDA's part: the pending gauge is active, so the Deployment goes 0 -> 1.
    kube.apps.patch_namespaced_deployment_scale(service, namespace, {"spec": {"replicas": 1}})
    held.join(timeout=90)
    assert held.error is None, repr(held.error)
    assert held.result is not None, "the held request never completed"
    status, body = held.result
    assert status == 200, body
    assert body["served_by"] == "backend"
    assert body["path"] == "/v1/models/cold:predict"
    assert body["body"] == '{"instances": [[1, 2]]}'
    assert body["target_header"] is None  # the activator's own header is not forwarded
    assert _ready_endpoints(kube, namespace, service) == 1
    assert activator.metric(pending, namespace, service) == 0
    assert activator.metric("kserve_stack_activator_hold_seconds_count", namespace, service) == 1
    log = activator.log.read_text()
    assert "holding a request for" in log and "released a held request" in log
    print(f"held for {held.seconds:.2f}s from request to answer (pod scheduled by kwok)")

    # Warm: forwarded at once, nothing held.
    started = time.monotonic()
    status, body = _post(f"{activator.url}/again", {"x-kserve-stack-target":
                                                    f"{namespace}/{service}"})  # fmt: skip
    assert status == 200 and body["path"] == "/again"
    assert time.monotonic() - started < 2
    assert activator.metric("kserve_stack_activator_hold_seconds_count", namespace, service) == 1


def test_hold_timeout_is_504_with_a_message(
    kube: Kube, namespace: str, activator: Activator
) -> None:
    service = _component(kube, namespace, "never")
    started = time.monotonic()
    status, body = _post(f"{activator.url}/v1/models/never:predict", {
        "x-kserve-stack-target": f"{namespace}/{service}",
        "x-kserve-stack-hold-timeout": "2"})  # fmt: skip
    waited = time.monotonic() - started
    assert status == 504, body
    assert f"{namespace}/{service} has no ready endpoint after 2s" in body["error"]
    assert 2 <= waited < 10
    assert activator.metric("kserve_stack_activator_pending_requests", namespace, service) == 0


def test_client_that_leaves_is_no_longer_pending(
    kube: Kube, namespace: str, activator: Activator
) -> None:
    service = _component(kube, namespace, "leaver")
    pending = "kserve_stack_activator_pending_requests"
    with pytest.raises(TimeoutError):
        _post(f"{activator.url}/", {"x-kserve-stack-target": f"{namespace}/{service}"},
              timeout=1.5)  # fmt: skip
    wait_for("the gauge to drop when the client left",
             lambda: activator.metric(pending, namespace, service) == 0, timeout=10)  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({"x-kserve-stack-target": "{ns}/no-such-predictor"}, 404, "no Service {ns}/no-such"),
        ({"x-kserve-stack-target": "other-ns/x-predictor"}, 404, "not served by this activator"),
        ({}, 400, "missing header x-kserve-stack-target"),
        ({"x-kserve-stack-target": "Bad Name"}, 400, "is not NAMESPACE/SERVICE"),
        (
            {"x-kserve-stack-target": "{ns}/x", "x-kserve-stack-hold-timeout": "soon"},
            400,
            "is not a positive number",
        ),
    ],
    ids=["unknown-service", "other-namespace", "no-header", "malformed", "bad-timeout"],
)
def test_bad_targets_are_refused_with_a_message(
    namespace: str, activator: Activator, headers: dict[str, str], status: int, text: str
) -> None:
    headers = {k: v.format(ns=namespace) for k, v in headers.items()}
    got, body = _post(f"{activator.url}/v1/models/x:predict", headers, timeout=10)
    assert got == status, body
    assert text.format(ns=namespace) in body["error"]


def test_wake_scale_patches_the_deployment_itself(
    kube: Kube, cluster: Cluster, namespace: str, backend: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    service = _component(kube, namespace, "selfwake")
    work = tmp_path_factory.mktemp("wake")
    process, handle = _start_activator(cluster, namespace, backend, work, "--wake", "scale")
    try:
        status, body = _post(f"{handle.url}/v1/models/selfwake:predict",
                             {"x-kserve-stack-target": f"{namespace}/{service}"})  # fmt: skip
        assert status == 200, body
        assert body["served_by"] == "backend"
        assert kube.apps.read_namespaced_deployment_scale(service, namespace).spec.replicas == 1
        assert "scaled Deployment" in handle.log.read_text()
    finally:
        _stop(process)
