"""Helpers of the reliability tests: the controller as a subprocess that can be killed and
restarted, manifests, readiness, listing children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kss_e2e import Kube, answers, free_ports, wait_for

REPO = Path(__file__).resolve().parents[2]
RUNTIMES = REPO / "controller" / "src" / "kserve_stack_controller" / "builtin_runtimes"
CONTROLLER = Path(sys.executable).parent / "kserve-stack-controller"
ISVC = ("serving.kserve.io/v1beta1", "InferenceService")
LABEL_ISVC = "serving.kserve.io/inferenceservice"
#: The kinds an InferenceService of the tests owns: (apiVersion, kind).
CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)


def isvc_manifest(name: str, storage: str = "gs://kfserving-examples/models/sklearn/1.0/model"
                  ) -> dict[str, Any]:  # fmt: skip
    """A sklearn InferenceService asking for little, so that the kwok nodes hold hundreds."""
    model = {
        "modelFormat": {"name": "sklearn"},
        "storageUri": storage,
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}},
    }  # fmt: skip
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": model}},
    }


def ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    ) and status.get("observedGeneration") == obj["metadata"].get("generation")


class ControllerProcess:
    """kserve-stack-controller watching one namespace; start / SIGKILL / stop at will.
    Every run appends to the same log file."""

    def __init__(
        self, kubeconfig: Path, namespace: str, log: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.args = args
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self, wait: bool = True) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        (self.port,) = free_ports(1)
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts + 1} at {time.strftime('%T')}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [str(CONTROLLER), "--namespace", self.namespace,
                 "--config-namespace", self.namespace, "--kubeconfig", str(self.kubeconfig),
                 "--health-host", "127.0.0.1", "--health-port", str(self.port),
                 "--log-level", "INFO", *self.args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
            )  # fmt: skip
        self.starts += 1
        if wait:
            wait_for("the controller's /readyz", self.is_ready, timeout=60, interval=0.2)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def is_ready(self) -> bool:
        assert self.process is not None
        return answers(self.process, self.log, f"http://127.0.0.1:{self.port}/readyz", "controller")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, whatever it was doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def list_items(kube: Kube, api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
    found = kube.resource(api_version, kind).get(namespace=namespace).to_dict()
    return list(found.get("items") or [])
