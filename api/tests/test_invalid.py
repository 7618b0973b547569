"""Invalid manifests are rejected, and the message names the field at fault."""

from __future__ import annotations

from typing import Any

import pytest
from kserve_stack_api.validation import InvalidManifestError, parse


def isvc(predictor: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "bad"},
        "spec": {"predictor": predictor, **spec},
    }


def graph(nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "bad"},
        "spec": {"nodes": nodes},
    }


SKLEARN = {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://m"}

CASES = [
    pytest.param(
        graph(
            {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"serviceName": "a", "weight": 40},
                        {"serviceName": "b", "weight": 50},
                    ],
                }
            }
        ),
        "spec.nodes.root.steps: the weights of a Splitter's steps must sum to 100",
        id="splitter-weights-sum-to-90",
    ),
    pytest.param(
        isvc({"sklearn": {"storageUri": "s3://a"}, "xgboost": {"storageUri": "s3://b"}}),
        "spec.predictor: a predictor takes exactly one of model",
        id="two-framework-blocks",
    ),
    pytest.param(
        isvc({"model": SKLEARN, "sklearn": {"storageUri": "s3://a"}}),
        "spec.predictor: a predictor takes exactly one of model",
        id="model-and-framework-block",
    ),
    pytest.param(
        graph({"main": {"routerType": "Sequence", "steps": [{"serviceName": "a"}]}}),
        "spec.nodes: the graph needs a node named 'root'",
        id="missing-root-node",
    ),
    pytest.param(
        graph({"root": {"routerType": "Sequence", "steps": [{"nodeName": "nowhere"}]}}),
        "spec.nodes: a step's nodeName must name a node of the graph",
        id="step-to-unknown-node",
    ),
    pytest.param(
        graph(
            {
                "root": {
                    "routerType": "Sequence",
                    "steps": [{"serviceName": "a", "serviceUrl": "http://b"}],
                }
            }
        ),
        "spec.nodes.root.steps[0]: a step needs exactly one of nodeName, serviceName, serviceUrl",
        id="step-with-two-targets",
    ),
    pytest.param(
        graph({"root": {"routerType": "Switch", "steps": [{"serviceName": "a"}]}}),
        "spec.nodes.root.steps: every step of a Switch needs a condition",
        id="switch-without-condition",
    ),
    pytest.param(
        graph({"root": {"routerType": "Loop", "steps": []}}),
        "spec.nodes.root.routerType: Input should be 'Sequence', 'Splitter'",
        id="unknown-router-type",
    ),
    pytest.param(
        isvc({"model": SKLEARN, "minReplicas": 3, "maxReplicas": 2}),
        "spec.predictor.minReplicas: minReplicas must not exceed maxReplicas",
        id="min-above-max",
    ),
    pytest.param(
        isvc({"model": SKLEARN, "canaryTrafficPercent": 120}),
        "spec.predictor.canaryTrafficPercent: Input should be less than or equal to 100",
        id="canary-over-100",
    ),
    pytest.param(
        isvc({"model": {"storageUri": "s3://m"}}),
        "spec.predictor.model.modelFormat: Field required",
        id="model-without-format",
    ),
    pytest.param(
        isvc({"model": SKLEARN, "sklaern": {}}),
        "spec.predictor.sklaern: unknown field",
        id="misspelt-field",
    ),
    pytest.param(
        isvc({}),
        "spec.predictor: a predictor needs model (or a framework block) or containers",
        id="empty-predictor",
    ),
    pytest.param(
        isvc({"model": {**SKLEARN, "protocolVersion": "v3"}}),
        "spec.predictor.model.protocolVersion: Input should be",
        id="unknown-protocol",
    ),
    pytest.param(
        {
            "apiVersion": "serving.kserve.io/v1alpha2",
            "kind": "LLMInferenceService",
            "metadata": {"name": "bad"},
            "spec": {"model": {"uri": "hf://a/b"}, "replicas": 2, "scaling": {"maxReplicas": 3}},
        },
        "spec.scaling: replicas and scaling are exclusive",
        id="llm-replicas-and-scaling",
    ),
    pytest.param(
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": {"name": "bad"},
            "spec": {"containers": []},
        },
        "spec.containers: a serving runtime needs at least one container",
        id="runtime-without-containers",
    ),
    pytest.param(
        {"apiVersion": "serving.kserve.io/v1", "kind": "InferenceService", "metadata": {}},
        "InferenceService has no version 'v1'",
        id="unknown-version",
    ),
    pytest.param(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}},
        "is not in the group serving.kserve.io",
        id="foreign-kind",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), CASES)
def test_invalid_manifest_is_rejected_naming_the_field(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidManifestError) as caught:
        parse(doc)
    assert expected in str(caught.value), caught.value.problems
