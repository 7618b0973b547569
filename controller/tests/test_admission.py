"""Admission reviews: field-named rejections, defaulting patches, pass-through of others."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from controller_factories import sample
from kserve_stack_controller.admission import review
from kserve_stack_controller.config import ControllerConfig

CONFIG = ControllerConfig()


def _review(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": operation, "object": obj}}  # fmt: skip


@pytest.mark.parametrize(
    "path",
    ["inferenceservice/sklearn-iris.yaml", "inferenceservice/canary.yaml",
     "inferenceservice/lightgbm-keda.yaml", "inferenceservice/xgboost-v2.yaml",
     "inferenceservice/transformer.yaml", "inferenceservice/custom-container.yaml",
     "inferenceservice/sklearn-legacy-framework.yaml",
     "servingruntime/cluster-xgboost.yaml", "servingruntime/kserve-stack-sklearn.yaml"],
)  # fmt: skip
def test_samples_are_admitted(path: str) -> None:
    answer = review(_review(sample(path)), CONFIG, mutate=False)["response"]
    assert answer == {"uid": "u-1", "allowed": True}


INVALID = [
    ("min-above-max", {"spec": {"predictor": {"minReplicas": 5, "maxReplicas": 2,
                                              "sklearn": {}}}}, "spec.predictor.minReplicas"),
    ("two-models", {"spec": {"predictor": {"sklearn": {}, "xgboost": {}}}}, "exactly one of"),
    ("unknown-field", {"spec": {"predictor": {"sklearn": {}, "replicaz": 1}}},
     "spec.predictor.replicaz: unknown field"),
    ("serverless", {"metadata": {"name": "x", "annotations": {
        "serving.kserve.io/deploymentMode": "Serverless"}},
        "spec": {"predictor": {"sklearn": {}}}}, "Standard"),
    ("hpa-zero", {"metadata": {"name": "x", "annotations": {
        "serving.kserve.io/autoscalerClass": "hpa"}},
        "spec": {"predictor": {"minReplicas": 0, "sklearn": {}}}}, "spec.predictor.minReplicas"),
    ("transformer-rps", {"spec": {"predictor": {"sklearn": {}}, "transformer": {
        "scaleMetric": "rps", "containers": [{"name": "t", "image": "t"}]}}}, "keda"),
]  # fmt: skip


@pytest.mark.parametrize(("patch", "text"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_is_rejected_with_the_field(patch: dict[str, Any], text: str) -> None:
    obj = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": {"name": "x"}, **patch}  # fmt: skip
    answer = review(_review(obj), CONFIG, mutate=False)["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 422
    assert text in answer["status"]["message"]
    assert answer["status"]["message"].startswith("InferenceService x is invalid: ")


def test_defaulting_patch_is_a_spec_replace_and_idempotent() -> None:
    obj = sample("inferenceservice/sklearn-legacy-framework.yaml")
    answer = review(_review(obj), CONFIG, mutate=True)["response"]
    assert answer["allowed"] and answer["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(answer["patch"]))
    assert patch[0]["op"] == "replace" and patch[0]["path"] == "/spec"
    model = patch[0]["value"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["protocolVersion"] == "v1"
    again = review(_review({**obj, "spec": patch[0]["value"]}), CONFIG, mutate=True)["response"]
    assert "patch" not in again


def test_delete_and_non_isvc_pass() -> None:
    assert review(_review({}, "DELETE"), CONFIG, mutate=False)["response"]["allowed"]
    runtime = sample("servingruntime/cluster-xgboost.yaml")
    assert "patch" not in review(_review(runtime), CONFIG, mutate=True)["response"]


def test_not_a_review() -> None:
    with pytest.raises(ValueError, match=r"request\.uid"):
        review({"kind": "AdmissionReview"}, CONFIG, mutate=False)


def test_reapplied_legacy_block_over_its_defaulted_self_is_converted_again() -> None:
    obj = sample("inferenceservice/sklearn-legacy-framework.yaml")
    obj["spec"]["predictor"]["sklearn"]["storageUri"] = "gs://new"
    obj["spec"]["predictor"]["model"] = {"modelFormat": {"name": "sklearn"},
                                         "storageUri": "gs://old"}  # fmt: skip
    answer = review(_review(obj), CONFIG, mutate=True)["response"]
    spec = json.loads(base64.b64decode(answer["patch"]))[0]["value"]
    assert "sklearn" not in spec["predictor"]
    assert spec["predictor"]["model"]["storageUri"] == "gs://new"
