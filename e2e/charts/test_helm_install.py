"""`helm install kserve-stack` on a real API server: a throw-away local cluster of its own
(dependency CRDs only: the chart brings serving.kserve.io's), so that the chart's
cluster-scoped objects and webhooks never meet the other tests. Installed with Helm 3,
upgraded, uninstalled (CRDs kept), installed again with Helm 4 over the kept CRDs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kss_e2e import free_ports
from kss_e2e.backend import REPO

pytestmark = [pytest.mark.control_plane, pytest.mark.slow]

SCRIPT = REPO / "hack" / "cluster" / "local_cluster.py"
CHART = REPO / "charts" / "kserve-stack"
CACHE = Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack"))
NAMESPACE, RELEASE = "kss-system", "kss"


def _versions() -> dict[str, str]:
    lines = (REPO / "hack" / "cluster" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not any((CACHE / "bin").glob("kube-apiserver-*")):
        pytest.skip("the control-plane binaries are not built (make cluster-binaries)")
    state = tmp_path_factory.mktemp("helm-cluster") / "cluster"
    names = ("api", "etcd", "etcd-peer", "controller-manager", "scheduler")
    ports = [f"--{n}-port={p}" for n, p in zip(names, free_ports(5), strict=True)]

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(SCRIPT), "--state-dir", str(state), *args],
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip

    try:
        up = script("up", "--no-project-crds", *ports)
        assert up.returncode == 0, up.stderr[-3000:]
        yield state / "kubeconfig"
    finally:
        down = script("down", "--verify")
        assert down.returncode == 0, down.stderr[-2000:]


def _run(binary: Path, kubeconfig: Path, *args: str) -> str:
    run = subprocess.run([str(binary), "--kubeconfig", str(kubeconfig), *args],
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, f"{binary.name} {' '.join(args)}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


KUBECTL = CACHE / "bin" / f"kubectl-npm-{_versions()['HELM4_NPM_VERSION']}"


def _get(kubeconfig: Path, *what: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_run(KUBECTL, kubeconfig, "get", *what, "-o", "json"))
    return doc


def test_install_upgrade_uninstall_reinstall(kubeconfig: Path) -> None:
    versions = _versions()
    helm3 = CACHE / "bin" / f"helm-{versions['HELM3_VERSION']}"
    helm4 = CACHE / "bin" / f"helm4-npm-{versions['HELM4_NPM_VERSION']}"
    for binary in (helm3, helm4):
        if not binary.exists():
            pytest.fail(f"{binary} is missing: run `make cluster-binaries`")
    install = ["upgrade", "--install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace"]
    _run(helm3, kubeconfig, *install)

    crds = _get(kubeconfig, "crd", "-l", "app.kubernetes.io/managed-by=Helm")["items"]
    assert {c["spec"]["names"]["kind"] for c in crds} >= {
        "InferenceService", "ServingRuntime", "ClusterServingRuntime", "InferenceGraph",
        "LLMInferenceService", "LLMInferenceServiceConfig"}  # fmt: skip
    deployments = {d["metadata"]["name"]: d
                   for d in _get(kubeconfig, "deployments", "-n", NAMESPACE)["items"]}  # fmt: skip
    assert sorted(deployments) == ["kserve-stack-activator", "kserve-stack-controller"]
    args = deployments["kserve-stack-controller"]["spec"]["template"]["spec"]["containers"][0]
    assert "--install-builtin-runtimes" in args["args"]  # the controller brings the runtimes
    hooks = _get(kubeconfig, "validatingwebhookconfiguration", "kserve-stack-webhook")
    for hook in hooks["webhooks"]:
        assert hook["clientConfig"]["service"]["namespace"] == NAMESPACE
    binding = _get(kubeconfig, "clusterrolebinding", "kserve-stack-controller")
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    config = _get(kubeconfig, "configmap", "inferenceservice-config", "-n", NAMESPACE)
    assert json.loads(config["data"]["activator"]) == {"namespace": NAMESPACE}

    # A ClusterServingRuntime is written while no controller serves the webhook (kwok runs
    # no container): the runtimes' webhook must not block it.
    runtime = REPO / "controller/src/kserve_stack_controller/builtin_runtimes/kserve-lgbserver.yaml"
    _run(KUBECTL, kubeconfig, "apply", "--server-side", "-f", str(runtime))
    # An upgrade with new values.
    values = {"config": {"ingress": {"ingressDomain": "models.example.org"}},
              "runtimes": {"image": "registry.example.org/kss/runtimes:9.9"}}  # fmt: skip
    values_file = kubeconfig.parent / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    _run(helm3, kubeconfig, *install, "-f", str(values_file))
    config = _get(kubeconfig, "configmap", "inferenceservice-config", "-n", NAMESPACE)
    assert json.loads(config["data"]["ingress"]) == {"ingressDomain": "models.example.org"}
    controller = _get(kubeconfig, "deployment", "kserve-stack-controller", "-n", NAMESPACE)
    args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--runtime-image=registry.example.org/kss/runtimes:9.9" in args

    # Uninstall keeps the CRDs (crds.keep), and Helm 4 installs again over them.
    _run(helm3, kubeconfig, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert _get(kubeconfig, "crd", "inferenceservices.serving.kserve.io")
    assert not _get(kubeconfig, "deployments", "-n", NAMESPACE)["items"]
    _run(helm4, kubeconfig, *install)
    deployments = _get(kubeconfig, "deployments", "-n", NAMESPACE)["items"]
    assert len(deployments) == 2
    _run(helm4, kubeconfig, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
