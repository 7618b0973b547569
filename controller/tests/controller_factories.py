"""Shared helpers of the controller tests: manifests built from small dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kserve_stack_api.inferenceservice import InferenceService
from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "docs" / "samples"


def isvc(
    predictor: dict[str, Any],
    name: str = "demo",
    namespace: str = "ns1",
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> InferenceService:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return InferenceService.model_validate(
        {"metadata": meta, "spec": {"predictor": predictor, **spec}}
    )


def runtime_spec(formats: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "supportedModelFormats": formats,
        "containers": [
            {"name": "kserve-container", "image": "img:1", "args": ["--model_name={{.Name}}"]}
        ],
        **extra,
    }


def serving_runtime(name: str, formats: list[dict[str, Any]], **extra: Any) -> ServingRuntime:
    return ServingRuntime.model_validate(
        {"metadata": {"name": name, "namespace": "ns1"}, "spec": runtime_spec(formats, **extra)}
    )


def cluster_runtime(
    name: str, formats: list[dict[str, Any]], **extra: Any
) -> ClusterServingRuntime:
    return ClusterServingRuntime.model_validate(
        {"metadata": {"name": name}, "spec": runtime_spec(formats, **extra)}
    )


def sample(path: str, namespace: str = "ns1") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / path).read_text())
    doc["metadata"]["namespace"] = namespace
    return doc
