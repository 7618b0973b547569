"""kustomize reads the same generated CRDs the chart does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_crd_base_emits_the_generated_crds() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "kustomize" / "crd")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    built = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out) if d}
    folder = REPO / "charts" / "kserve-stack" / "files" / "crds"
    generated = [yaml.safe_load(p.read_text()) for p in folder.glob("serving.kserve.io_*.yaml")]
    assert {d["metadata"]["name"]: d for d in generated} == built
