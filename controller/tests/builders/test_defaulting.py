"""Defaulting: legacy framework blocks, protocol, resources; idempotence."""

from __future__ import annotations

import pytest
from controller_factories import isvc
from kserve_stack_controller.builders.defaulting import default_inference_service
from kserve_stack_controller.config import ControllerConfig

CONFIG = ControllerConfig()


@pytest.mark.parametrize("framework", ["sklearn", "xgboost", "lightgbm", "onnx", "pytorch"])
def test_framework_block_becomes_model(framework: str) -> None:
    out = default_inference_service(isvc({framework: {"storageUri": "s3://b/m"}}), CONFIG)
    predictor = out.spec.predictor
    assert getattr(predictor, framework) is None
    assert predictor.model is not None
    assert predictor.model.model_format.name == framework
    assert predictor.model.storage_uri == "s3://b/m"


RESOURCE_CASES = [
    ("none-stated", None, {"cpu": "1", "memory": "2Gi"}, {"cpu": "1", "memory": "2Gi"}),
    ("request-kept", {"requests": {"cpu": "100m"}}, {"cpu": "100m", "memory": "2Gi"},
     {"cpu": "1", "memory": "2Gi"}),
    ("request-above-default-limit-lifts-limit", {"requests": {"memory": "8Gi"}},
     {"cpu": "1", "memory": "8Gi"}, {"cpu": "1", "memory": "8Gi"}),
    ("limit-below-default-request-pulls-request", {"limits": {"cpu": "500m"}},
     {"cpu": "500m", "memory": "2Gi"}, {"cpu": "500m", "memory": "2Gi"}),
    ("gpu-limit-kept", {"limits": {"nvidia.com/gpu": 1}}, {"cpu": "1", "memory": "2Gi"},
     {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stated", "requests", "limits"),
    [c[1:] for c in RESOURCE_CASES],
    ids=[c[0] for c in RESOURCE_CASES],
)
def test_resources(stated, requests, limits) -> None:  # type: ignore[no-untyped-def]
    model = {"modelFormat": {"name": "sklearn"}}
    if stated:
        model["resources"] = stated
    out = default_inference_service(isvc({"model": model}), CONFIG)
    resources = out.spec.predictor.model.resources  # type: ignore[union-attr]
    assert resources is not None
    assert resources.requests == requests
    assert resources.limits == limits


def test_protocol_default_and_explicit() -> None:
    out = default_inference_service(isvc({"model": {"modelFormat": {"name": "x"}}}), CONFIG)
    assert out.spec.predictor.model.protocol_version == "v1"  # type: ignore[union-attr]
    v2 = isvc({"model": {"modelFormat": {"name": "x"}, "protocolVersion": "v2"}})
    assert default_inference_service(v2, CONFIG).spec.predictor.model.protocol_version == "v2"  # type: ignore[union-attr]


def test_custom_and_transformer_containers_get_resources() -> None:
    out = default_inference_service(
        isvc({"containers": [{"name": "c", "image": "i"}]},
             transformer={"containers": [{"name": "t", "image": "i"}]}),
        CONFIG,
    )  # fmt: skip
    assert out.spec.predictor.containers[0].resources.requests["cpu"] == "1"  # type: ignore[index,union-attr]
    assert out.spec.transformer.containers[0].resources.limits["memory"] == "2Gi"  # type: ignore[index,union-attr]


def test_idempotent_and_input_untouched() -> None:
    original = isvc({"sklearn": {"storageUri": "gs://x"}})
    once = default_inference_service(original, CONFIG)
    assert original.spec.predictor.sklearn is not None
    assert default_inference_service(once, CONFIG).to_wire() == once.to_wire()
