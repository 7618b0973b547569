"""The project's generated CRDs on a real API server: every sample is accepted, the CEL
invariants reject bad objects with messages that name the field, and `kubectl get` shows
the printer columns."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from kss_e2e import Kube
from kss_e2e.backend import REPO
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.control_plane

SAMPLES = REPO / "docs" / "samples"
CLUSTER_SCOPED = {"ClusterServingRuntime"}


def samples() -> list[Any]:
    found = []
    for path in sorted(SAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found.append(pytest.param(doc, id=str(path.relative_to(SAMPLES))))
    return found


def _apply(kube: Kube, doc: dict[str, Any], namespace: str) -> Any:
    if doc["kind"] in CLUSTER_SCOPED:
        return kube.apply(doc)
    return kube.apply(doc, namespace=namespace)


@pytest.mark.parametrize("doc", samples())
def test_sample_is_accepted_as_written(kube: Kube, namespace: str, doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(doc)
    if doc["kind"] in CLUSTER_SCOPED:
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{namespace}"[:63]
    created = _apply(kube, doc, namespace)[0]
    # Nothing the user wrote was pruned: the stored spec is the spec that was sent, except
    # v1alpha1-only fields of LLMInferenceService, which the v1alpha2 storage version lacks
    # (KServe serves both versions without a conversion webhook, and drops them the same way).
    expected = copy.deepcopy(doc["spec"])
    if doc["apiVersion"] == "serving.kserve.io/v1alpha1" and doc["kind"].startswith("LLM"):
        expected.get("model", {}).pop("criticality", None)
    assert created.to_dict()["spec"] == expected
    if doc["kind"] in CLUSTER_SCOPED:
        kube.resource(doc["apiVersion"], doc["kind"]).delete(name=doc["metadata"]["name"])


def _rejection(kube: Kube, namespace: str, doc: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        _apply(kube, doc, namespace)
    assert caught.value.status == 422, caught.value.body
    return str(caught.value.body)


def _graph(name: str, nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name},
        "spec": {"nodes": nodes},
    }


def _isvc(name: str, predictor: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": predictor},
    }


REJECTED = [
    pytest.param(
        _graph(
            "split-90",
            {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"serviceName": "a", "weight": 40},
                        {"serviceName": "b", "weight": 50},
                    ],
                }
            },
        ),
        ("spec.nodes[root].steps", "the weights of a Splitter's steps must sum to 100"),
        id="splitter-weights-sum-to-90",
    ),
    pytest.param(
        _isvc(
            "two-blocks", {"sklearn": {"storageUri": "s3://a"}, "xgboost": {"storageUri": "s3://b"}}
        ),
        ("spec.predictor", "a predictor takes exactly one of model"),
        id="two-framework-blocks",
    ),
    pytest.param(
        _graph("no-root", {"main": {"routerType": "Sequence", "steps": [{"serviceName": "a"}]}}),
        ("spec.nodes", "the graph needs a node named 'root'"),
        id="missing-root-node",
    ),
    pytest.param(
        _isvc(
            "min-over-max",
            {"model": {"modelFormat": {"name": "sklearn"}}, "minReplicas": 3, "maxReplicas": 2},
        ),
        ("spec.predictor.minReplicas", "minReplicas must not exceed maxReplicas"),
        id="min-above-max",
    ),
    pytest.param(
        _isvc(
            "canary-120",
            {"model": {"modelFormat": {"name": "sklearn"}}, "canaryTrafficPercent": 120},
        ),
        ("spec.predictor.canaryTrafficPercent", "less than or equal to 100"),
        id="canary-over-100",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), REJECTED)
def test_invalid_object_is_rejected_naming_the_field(
    kube: Kube, namespace: str, doc: dict[str, Any], expected: tuple[str, str]
) -> None:
    body = _rejection(kube, namespace, doc)
    field, message = expected
    assert field in body and message in body, body


def test_kubectl_get_shows_printer_columns_and_short_names(kube: Kube, namespace: str) -> None:
    sample = yaml.safe_load((SAMPLES / "inferenceservice" / "sklearn-iris.yaml").read_text())
    _apply(kube, sample, namespace)
    table = kube.kubectl("get", "isvc", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header[:3] == ["NAME", "URL", "READY"], table
    assert "AGE" in header and "sklearn-iris" in table
    graph = yaml.safe_load((SAMPLES / "inferencegraph" / "sequence.yaml").read_text())
    _apply(kube, graph, namespace)
    graphs = kube.kubectl("get", "ig", "-n", namespace)
    assert graphs.splitlines()[0].split() == ["NAME", "URL", "READY", "AGE"], graphs


def test_llm_service_is_served_at_both_versions(kube: Kube, namespace: str) -> None:
    sample = yaml.safe_load((SAMPLES / "llminferenceservice" / "simple.yaml").read_text())
    _apply(kube, sample, namespace)
    old = kube.resource("serving.kserve.io/v1alpha1", "LLMInferenceService")
    seen = old.get(name=sample["metadata"]["name"], namespace=namespace)
    assert seen.apiVersion == "serving.kserve.io/v1alpha1"
    assert seen.spec.model.uri == sample["spec"]["model"]["uri"]


def test_generated_crds_are_the_installed_ones(kube: Kube) -> None:
    for path in sorted((REPO / "charts" / "kserve-stack" / "files" / "crds").glob("serving*.yaml")):
        crd = yaml.safe_load(path.read_text())
        live = kube.apiext.read_custom_resource_definition(crd["metadata"]["name"])
        assert [v.name for v in live.spec.versions] == [v["name"] for v in crd["spec"]["versions"]]
        assert live.status.accepted_names.kind == crd["spec"]["names"]["kind"]
