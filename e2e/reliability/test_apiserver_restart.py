"""The API server restarts under the running controller (gracefully, then killed); the
controller recovers by itself: InferenceServices created while it was down and after it
came back get their Deployments and turn Ready, and a child deleted while it was down is
put back, without a controller restart.

The restarted API server is a second kube-apiserver of the local control plane (the same
binary, flags and etcd, on its own port), so that restarting it disturbs no other test
running against the cluster's main API server at the same time."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kss_e2e import Cluster, Kube, free_ports, wait_for
from kss_e2e.backend import kubectl_binary
from kubernetes.client.exceptions import ApiException
from rel_support import ISVC, ControllerProcess, isvc_manifest, ready

pytestmark = [pytest.mark.control_plane, pytest.mark.slow]


class SpareApiServer:
    """A second kube-apiserver on the local control plane's etcd, restartable at will."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        assert cluster.local_state is not None
        pid = int((cluster.local_state / "pids" / "kube-apiserver.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        (self.port,) = free_ports(1)
        self.argv = [
            f"--secure-port={self.port}" if a.startswith("--secure-port=") else a for a in argv
        ]
        self.cwd = cluster.local_state
        self.log = workdir / "kube-apiserver-spare.log"
        config = yaml.safe_load(cluster.kubeconfig.read_text())
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = workdir / "spare.kubeconfig"
        self.kubeconfig.write_text(json.dumps(config))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, kube: Kube) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

        def ready_() -> bool:
            assert self.process is not None and self.process.poll() is None, (
                "the spare kube-apiserver exited:\n" + self.log.read_text()[-3000:]
            )
            result = subprocess.run(
                [kubectl_binary(), f"--kubeconfig={self.kubeconfig}", "get", "--raw=/readyz"],
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
            return result.returncode == 0

        wait_for("the spare kube-apiserver's /readyz", ready_, timeout=120, interval=0.5)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def spare_apiserver(cluster: Cluster, kube: Kube, tmp_path: Path) -> Iterator[SpareApiServer]:
    if cluster.backend != "local":
        pytest.skip(f"needs the local control plane to run a second kube-apiserver, "
                    f"not {cluster.backend}")  # fmt: skip
    server = SpareApiServer(cluster, tmp_path)
    server.start(kube)
    try:
        yield server
    finally:
        server.stop()
        if os.environ.get("KSS_E2E_SHOW_CONTROLLER_LOG") == "1":
            print(server.log.read_text()[-5000:])


def _wait_ready(kube: Kube, namespace: str, name: str, timeout: float = 90) -> None:
    def probe() -> bool:
        obj = kube.resource(*ISVC).get(name=name, namespace=namespace).to_dict()
        return ready(obj)

    wait_for(f"InferenceService {name} Ready", probe, timeout=timeout)


@pytest.mark.usefixtures("runtimes")
def test_controller_recovers_when_the_api_server_restarts(
    kube: Kube, namespace: str, spare_apiserver: SpareApiServer,
    make_controller: Callable[[Path], ControllerProcess],
) -> None:  # fmt: skip
    controller = make_controller(spare_apiserver.kubeconfig)
    controller.start()
    isvcs = kube.resource(*ISVC)
    isvcs.create(body=isvc_manifest("before"), namespace=namespace)
    _wait_ready(kube, namespace, "before")
    pid = controller.process.pid if controller.process else None
    for round_, sig in enumerate((signal.SIGTERM, signal.SIGKILL)):
        spare_apiserver.stop(sig)
        down = time.monotonic()
        print(f"round {round_}: API server stopped ({sig.name})")
        # Written through the main API server while the controller's one is down.
        isvcs.create(body=isvc_manifest(f"during-{round_}"), namespace=namespace)
        if round_ == 0:
            # A child deleted unseen: the restarted API server cannot resume the watches
            # from where they were (410), kopf lists again, and the listing lacks it.
            kube.apps.delete_namespaced_deployment("before-predictor", namespace)
        time.sleep(max(0.0, 5 - (time.monotonic() - down)))
        spare_apiserver.start(kube)
        print(f"round {round_}: API server back after {time.monotonic() - down:.1f}s")
        isvcs.create(body=isvc_manifest(f"after-{round_}"), namespace=namespace)
        if round_ == 0:
            wait_for(
                "the Deployment deleted during the outage to come back",
                functools.partial(_deployment, kube, namespace, "before-predictor"),
                timeout=120,
            )
        for name in (f"during-{round_}", f"after-{round_}"):
            wait_for(
                f"Deployment {name}-predictor after the restart ({sig.name})",
                functools.partial(_deployment, kube, namespace, f"{name}-predictor"),
                timeout=120,
            )
            _wait_ready(kube, namespace, name)
            print(f"round {round_}: {name} Ready {time.monotonic() - down:.1f}s after the stop")
    assert controller.alive() and controller.process and controller.process.pid == pid
    assert controller.starts == 1
    # The children of the first one are still in place, and hand edits are still put back.
    kube.apps.delete_namespaced_deployment("before-predictor", namespace)
    wait_for("the deleted Deployment to come back",
             lambda: _deployment(kube, namespace, "before-predictor"), timeout=60)  # fmt: skip
    assert "Traceback" not in controller.log_text(), controller.log_text()[-5000:]


def _deployment(kube: Kube, namespace: str, name: str) -> bool:
    with contextlib.suppress(ApiException):
        kube.apps.read_namespaced_deployment(name, namespace)
        return True
    return False
