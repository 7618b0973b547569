"""Defaulting: what the mutating webhook writes and what the reconciler assumes.

- A legacy framework block (``predictor.sklearn`` ...) becomes ``predictor.model`` with
  ``modelFormat.name`` set to the framework.
- ``model.protocolVersion`` defaults to the configured protocol (v1).
- Every model and custom container without resources gets the configured defaults (per key:
  a request or limit stated in the spec wins).
Defaulting is idempotent: defaulting a defaulted object changes nothing.
"""

from __future__ import annotations

from kserve_stack_api.core import ContainerFields, PodSpecFields, ResourceRequirements
from kserve_stack_api.inferenceservice import (
    FRAMEWORK_MODEL_FORMAT,
    FRAMEWORKS,
    InferenceService,
    ModelFormat,
    ModelSpec,
)

from kserve_stack_controller.config import ControllerConfig


def default_resources(
    current: ResourceRequirements | None, config: ControllerConfig
) -> ResourceRequirements:
    """``current`` with every missing request/limit key filled in from the configuration."""
    wanted = config.inference_service.resources
    stated_requests = dict(current.requests or {}) if current else {}
    stated_limits = dict(current.limits or {}) if current else {}
    requests: dict[str, int | str] = {**wanted.requests, **stated_requests}
    limits: dict[str, int | str] = {**wanted.limits, **stated_limits}
    # A stated request above the default limit would be refused by the API server: the limit
    # follows the request. A stated limit below the default request pulls the request down.
    for key, value in stated_requests.items():
        if key not in stated_limits and key in limits and _quantity(value) > _quantity(limits[key]):
            limits[key] = value
    for key, value in stated_limits.items():
        if (
            key not in stated_requests
            and key in requests
            and _quantity(value) < _quantity(requests[key])
        ):
            requests[key] = value
    extra = (current.model_extra or {}) if current else {}
    return ResourceRequirements(requests=requests, limits=limits, **extra)


def _quantity(value: int | str) -> float:
    """A Kubernetes quantity as a float (enough to compare two of the same resource)."""
    text = str(value).strip()
    suffixes = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
        "n": 1e-9,
        "u": 1e-6,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
        "E": 1e18,
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


def _default_container_resources(container: ContainerFields, config: ControllerConfig) -> None:
    container.resources = default_resources(container.resources, config)


def _default_pod(pod: PodSpecFields, config: ControllerConfig) -> None:
    for container in pod.containers or ():
        _default_container_resources(container, config)


def default_inference_service(isvc: InferenceService, config: ControllerConfig) -> InferenceService:
    """A defaulted copy of ``isvc`` (the input is left unchanged)."""
    # A copy through a dump: several times cheaper than a deep copy of the models.
    result = type(isvc).model_validate(isvc.model_dump(by_alias=True))
    predictor = result.spec.predictor
    for framework in FRAMEWORKS:
        block = getattr(predictor, framework)
        if block is None:
            continue
        fields = block.model_dump(exclude_none=True)
        predictor.model = ModelSpec(
            model_format=ModelFormat(name=FRAMEWORK_MODEL_FORMAT[framework]), **fields
        )
        setattr(predictor, framework, None)
    if predictor.model is not None:
        if predictor.model.protocol_version is None:
            predictor.model.protocol_version = config.inference_service.protocol_version
        _default_container_resources(predictor.model, config)
    _default_pod(predictor, config)
    if result.spec.transformer is not None:
        _default_pod(result.spec.transformer, config)
    if result.spec.explainer is not None:
        _default_pod(result.spec.explainer, config)
    return result
