"""Fixtures of the chart tests: each test runs with Helm 3 and Helm 4, and ``render`` is
``helm template`` of the chart with ``--set`` overrides, as parsed documents."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kserve-stack"
BIN = Path(os.environ.get("KSS_CACHE_DIR", Path.home() / ".cache" / "kserve-stack")) / "bin"
RELEASE_NAMESPACE = "kserve-stack"

Render = Callable[..., list[dict[str, Any]]]


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


@pytest.fixture
def render(helm: Path) -> Render:
    def run(*overrides: str) -> list[dict[str, Any]]:
        # Render for the Kubernetes version the local control plane runs: a helm built from
        # source defaults to an old one, which the chart's kubeVersion refuses.
        args = [str(helm), "template", "kss", str(CHART), "--namespace", RELEASE_NAMESPACE]
        args += ["--kube-version", _versions()["KUBERNETES_VERSION"]]
        for override in overrides:
            args += ["--set", override]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    return run
