"""The chart renders the generated CRDs, with Helm 3 and Helm 4, as its values say."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kserve-stack"
GENERATED = CHART / "files" / "crds"
BIN = Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack")) / "bin"


def _versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (REPO / "hack" / "cluster" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def _helm_binaries() -> list[Any]:
    versions = _versions()
    return [
        pytest.param(BIN / f"helm-{versions['HELM3_VERSION']}", id="helm3"),
        pytest.param(BIN / f"helm4-npm-{versions['HELM4_NPM_VERSION']}", id="helm4"),
    ]


@pytest.fixture(params=_helm_binaries())
def helm(request: pytest.FixtureRequest) -> Path:
    binary: Path = request.param
    if not binary.exists():
        message = f"{binary} is missing: run `make cluster-binaries`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def render(helm: Path, *overrides: str) -> list[dict[str, Any]]:
    # Render for the Kubernetes version the local control plane runs: a helm built from
    # source defaults to an old one, which the chart's kubeVersion refuses.
    kube_version = _versions()["KUBERNETES_VERSION"]
    args = [str(helm), "template", "kss", str(CHART), "--namespace", "kserve-stack"]
    args += ["--kube-version", kube_version]
    for override in overrides:
        args += ["--set", override]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, f"{' '.join(args)} failed: {run.stderr}"
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def generated() -> dict[str, dict[str, Any]]:
    docs = (yaml.safe_load(p.read_text()) for p in GENERATED.glob("serving.kserve.io_*.yaml"))
    return {doc["metadata"]["name"]: doc for doc in docs}


def test_renders_every_generated_crd_unchanged_but_for_metadata(helm: Path) -> None:
    rendered = {
        d["metadata"]["name"]: d for d in render(helm) if d["kind"] == "CustomResourceDefinition"
    }
    expected = generated()
    assert sorted(rendered) == sorted(expected)
    for name, crd in rendered.items():
        assert crd["spec"] == expected[name]["spec"], name
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crds_can_be_left_out_or_not_kept(helm: Path) -> None:
    assert not [
        d for d in render(helm, "crds.enabled=false") if d["kind"] == "CustomResourceDefinition"
    ]
    unkept = render(helm, "crds.keep=false")
    assert unkept and all("annotations" not in d["metadata"] for d in unkept)
