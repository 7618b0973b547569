"""The chart renders the generated CRDs, with Helm 3 and Helm 4, as its values say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "charts" / "kserve-stack" / "files" / "crds"
Render = Any  # conftest.Render: helm template with --set overrides


def generated() -> dict[str, dict[str, Any]]:
    docs = (yaml.safe_load(p.read_text()) for p in GENERATED.glob("serving.kserve.io_*.yaml"))
    return {doc["metadata"]["name"]: doc for doc in docs}


def test_renders_every_generated_crd_unchanged_but_for_metadata(render: Render) -> None:
    rendered = {
        d["metadata"]["name"]: d for d in render() if d["kind"] == "CustomResourceDefinition"
    }
    expected = generated()
    assert sorted(rendered) == sorted(expected)
    for name, crd in rendered.items():
        assert crd["spec"] == expected[name]["spec"], name
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crds_can_be_left_out_or_not_kept(render: Render) -> None:
    assert not [d for d in render("crds.enabled=false") if d["kind"] == "CustomResourceDefinition"]
    unkept = [d for d in render("crds.keep=false") if d["kind"] == "CustomResourceDefinition"]
    assert unkept and all("annotations" not in d["metadata"] for d in unkept)
