"""InferenceService, serving.kserve.io/v1beta1 — field-compatible with KServe."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from kserve_stack_api.base import ApiModel, Invariant, OpenModel
from kserve_stack_api.core import (
    Addressable,
    Condition,
    ContainerFields,
    JsonObject,
    ObjectMeta,
    PodSpecFields,
)

ProtocolVersion = Literal["v1", "v2", "grpc-v1", "grpc-v2"]

#: The legacy per-framework blocks of a predictor, in KServe's order.
FRAMEWORKS: tuple[str, ...] = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "pytorch",
    "tensorflow",
    "onnx",
    "triton",
    "huggingface",
    "pmml",
    "paddle",
)

#: The model format a legacy framework block stands for (``triton`` serves several).
FRAMEWORK_MODEL_FORMAT: dict[str, str] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
    "onnx": "onnx",
    "triton": "triton",
    "huggingface": "huggingface",
    "pmml": "pmml",
    "paddle": "paddle",
}


class StorageSpec(ApiModel):
    path: str | None = None
    schema_path: str | None = None
    parameters: dict[str, str] | None = None
    key: str | None = None


class PredictorExtensionSpec(ContainerFields):
    """A model server container plus where its model lives (the legacy framework blocks)."""

    storage_uri: str | None = None
    runtime_version: str | None = None
    protocol_version: ProtocolVersion | None = None
    storage: StorageSpec | None = None


class ModelFormat(ApiModel):
    name: str = Field(description="The model's format, e.g. sklearn, xgboost, lightgbm, onnx.")
    version: str | None = None


class ModelSpec(PredictorExtensionSpec):
    """The framework-neutral model block: a format, and optionally the runtime to use."""

    model_format: ModelFormat
    runtime: str | None = Field(
        default=None, description="A ServingRuntime or ClusterServingRuntime name to use."
    )


class LoggerSpec(ApiModel):
    url: str | None = None
    mode: Literal["all", "request", "response"] | None = None
    metadata_headers: list[str] | None = None
    metadata_annotations: list[str] | None = None
    storage: JsonObject | None = None
    batch_size: int | None = None
    batch_interval: str | None = None
    marshaller_url: str | None = None


class Batcher(ApiModel):
    max_batch_size: int | None = Field(default=None, ge=1)
    max_latency: int | None = Field(default=None, ge=1)
    timeout: int | None = Field(default=None, ge=1)


class ComponentExtensionSpec(ApiModel):
    """Scaling, rollout and traffic settings common to every component."""

    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=0)
    scale_target: int | None = Field(default=None, ge=1)
    scale_metric: Literal["cpu", "memory", "concurrency", "rps"] | None = None
    scale_metric_type: Literal["Utilization", "AverageValue", "Value"] | None = None
    auto_scaling: JsonObject | None = None
    container_concurrency: int | None = Field(default=None, ge=0)
    timeout: int | None = Field(default=None, ge=1, description="Request timeout in seconds.")
    canary_traffic_percent: int | None = Field(default=None, ge=0, le=100)
    logger: LoggerSpec | None = None
    batcher: Batcher | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    deployment_strategy: JsonObject | None = None


class WorkerSpec(PodSpecFields):
    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)


def _at_most_one_model_block(predictor: PredictorSpec) -> bool:
    return len(predictor.model_blocks()) <= 1


def _has_something_to_run(predictor: PredictorSpec) -> bool:
    return bool(predictor.model_blocks() or predictor.containers)


def _replica_bounds(component: ComponentExtensionSpec) -> bool:
    low, high = component.min_replicas, component.max_replicas
    return low is None or high is None or high == 0 or low <= high


_REPLICA_BOUNDS = Invariant(
    cel="!has(self.minReplicas) || !has(self.maxReplicas) || self.maxReplicas == 0"
    " || self.minReplicas <= self.maxReplicas",
    message="minReplicas must not exceed maxReplicas",
    check=_replica_bounds,
    field="minReplicas",
)


class PredictorSpec(PodSpecFields, ComponentExtensionSpec):
    """What serves the model: exactly one framework block or ``model``, or custom containers."""

    sklearn: PredictorExtensionSpec | None = None
    xgboost: PredictorExtensionSpec | None = None
    lightgbm: PredictorExtensionSpec | None = None
    pytorch: PredictorExtensionSpec | None = None
    tensorflow: PredictorExtensionSpec | None = None
    onnx: PredictorExtensionSpec | None = None
    triton: PredictorExtensionSpec | None = None
    huggingface: PredictorExtensionSpec | None = None
    pmml: PredictorExtensionSpec | None = None
    paddle: PredictorExtensionSpec | None = None
    model: ModelSpec | None = None
    worker_spec: WorkerSpec | None = None
    storage_uris: list[JsonObject] | None = None
    storage_container_name: str | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="["
            + ", ".join(f"has(self.{name})" for name in (*FRAMEWORKS, "model"))
            + "].filter(x, x).size() <= 1",
            message="a predictor takes exactly one of model, "
            + ", ".join(FRAMEWORKS)
            + "; more than one is set",
            check=_at_most_one_model_block,
        ),
        Invariant(
            cel="["
            + ", ".join(f"has(self.{name})" for name in (*FRAMEWORKS, "model", "containers"))
            + "].exists(x, x)",
            message="a predictor needs model (or a framework block) or containers",
            check=_has_something_to_run,
        ),
        _REPLICA_BOUNDS,
    )

    def model_blocks(self) -> dict[str, PredictorExtensionSpec]:
        """The framework blocks and ``model`` that are set, by field name."""
        blocks = {name: getattr(self, name) for name in (*FRAMEWORKS, "model")}
        return {name: block for name, block in blocks.items() if block is not None}


class ExplainerExtensionSpec(ContainerFields):
    storage_uri: str | None = None
    runtime_version: str | None = None
    config: dict[str, str] | None = None


class ExplainerSpec(PodSpecFields, ComponentExtensionSpec):
    art: ExplainerExtensionSpec | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (_REPLICA_BOUNDS,)


class TransformerSpec(PodSpecFields, ComponentExtensionSpec):
    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="has(self.containers) && size(self.containers) > 0",
            message="a transformer needs containers",
            check=lambda t: bool(t.containers),
            field="containers",
        ),
        _REPLICA_BOUNDS,
    )


class InferenceServiceSpec(ApiModel):
    predictor: PredictorSpec
    transformer: TransformerSpec | None = None
    explainer: ExplainerSpec | None = None


class TrafficTarget(OpenModel):
    tag: str | None = None
    revision_name: str | None = None
    latest_revision: bool | None = None
    percent: int | None = None
    url: str | None = None


class ComponentStatus(ApiModel):
    url: str | None = None
    rest_url: str | None = Field(default=None, alias="restUrl")
    grpc_url: str | None = Field(default=None, alias="grpcUrl")
    address: Addressable | None = None
    traffic: list[TrafficTarget] | None = None
    latest_ready_revision: str | None = None
    latest_created_revision: str | None = None
    previous_rolledout_revision: str | None = None
    latest_rolledout_revision: str | None = None


class ModelRevisionStates(ApiModel):
    active_model_state: str | None = None
    target_model_state: str | None = None


class FailureInfo(ApiModel):
    location: str | None = None
    reason: str | None = None
    message: str | None = None
    model_revision_name: str | None = None
    time: str | None = None
    exit_code: int | None = None


class ModelCopies(ApiModel):
    failed_copies: int = 0
    total_copies: int | None = None


class ModelStatus(ApiModel):
    transition_status: (
        Literal["", "UpToDate", "InProgress", "BlockedByFailedLoad", "InvalidSpec"] | None
    ) = None
    states: ModelRevisionStates | None = None
    last_failure_info: FailureInfo | None = None
    copies: ModelCopies | None = None


class InferenceServiceStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    url: str | None = None
    address: Addressable | None = None
    annotations: dict[str, str] | None = None
    components: dict[str, ComponentStatus] | None = None
    model_status: ModelStatus | None = None
    deployment_mode: str | None = None
    serving_runtime_name: str | None = None
    cluster_serving_runtime_name: str | None = None


class InferenceService(ApiModel):
    api_version: Literal["serving.kserve.io/v1beta1"] = "serving.kserve.io/v1beta1"
    kind: Literal["InferenceService"] = "InferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceServiceSpec
    status: InferenceServiceStatus | None = None
