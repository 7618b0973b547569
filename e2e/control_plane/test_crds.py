"""The dependency CRDs (Gateway API, Inference Extension, LWS, KEDA, Envoy
Gateway, Envoy AI Gateway, Prometheus Operator, GPU Operator, llm-d router) and,
once generated, the project's own CRDs: Established and enforcing their schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from kss_e2e import Kube
from kss_e2e.backend import REPO
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.control_plane

DEPENDENCIES = (
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
CRDS_DIR = Path(os.environ.get("KSS_CRDS_DIR", REPO.parent / "shared" / "crds"))
PROJECT_CRDS = REPO / "charts" / "kserve-stack" / "files" / "crds"


def _crd_names(folder: Path) -> set[str]:
    names = set()
    for path in sorted(folder.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.add(doc["metadata"]["name"])
    return names


def _expected() -> set[str]:
    if not CRDS_DIR.is_dir():
        pytest.fail(f"the dependency CRDs are missing: {CRDS_DIR} (set KSS_CRDS_DIR)")
    names: set[str] = set()
    for sub in DEPENDENCIES:
        names |= _crd_names(CRDS_DIR / sub)
    if PROJECT_CRDS.is_dir():
        names |= _crd_names(PROJECT_CRDS)
    return names


def test_dependency_crds_are_established(kube: Kube) -> None:
    expected = _expected()
    assert len(expected) >= 30, f"only {len(expected)} CRDs found under {CRDS_DIR}"
    established = {
        crd.metadata.name
        for crd in kube.apiext.list_custom_resource_definition().items
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])
    }
    missing = sorted(expected - established)
    assert not missing, f"CRDs not installed or not Established: {missing}"


def _route(path_value: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "route"},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": path_value}}],
                    "backendRefs": [{"name": "backend", "port": 8080}],
                }
            ],
        },
    }


def test_gateway_api_cel_rules_are_enforced(kube: Kube, namespace: str) -> None:
    # HTTPRoute's CEL rule: a PathPrefix match must be an absolute path.
    with pytest.raises(ApiException) as err:
        kube.apply(_route("no-leading-slash"), namespace=namespace)
    assert err.value.status == 422
    assert "must be an absolute path" in err.value.body
    created = kube.apply(_route("/v1"), namespace=namespace)
    assert created[0].metadata.name == "route"
