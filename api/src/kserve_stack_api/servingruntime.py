"""ServingRuntime and ClusterServingRuntime, serving.kserve.io/v1alpha1."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from kserve_stack_api.base import ApiModel, Invariant
from kserve_stack_api.core import Container, JsonObject, ObjectMeta

ProtocolVersion = Literal["v1", "v2", "grpc-v1", "grpc-v2"]


class SupportedModelFormat(ApiModel):
    name: str
    version: str | None = None
    auto_select: bool | None = Field(
        default=None, description="Whether the runtime may be picked when none is named."
    )
    priority: int | None = Field(
        default=None, ge=1, description="Higher wins among auto-selectable runtimes."
    )


class StorageHelper(ApiModel):
    disabled: bool | None = None


class BuiltInAdapter(ApiModel):
    server_type: str | None = None
    runtime_management_port: int | None = None
    mem_buffer_bytes: int | None = None
    model_loading_timeout_millis: int | None = None
    env: list[JsonObject] | None = None


class ServingRuntimePodSpec(ApiModel):
    """The pod-level part of a runtime: containers and where they may run."""

    containers: list[Container] | None = None
    volumes: list[JsonObject] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[JsonObject] | None = None
    affinity: JsonObject | None = None
    image_pull_secrets: list[JsonObject] | None = None
    scheduler_name: str | None = None
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class WorkerSpec(ServingRuntimePodSpec):
    """The worker pods of a multi-node runtime (pipeline / tensor parallel)."""

    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)


class ServingRuntimeSpec(ServingRuntimePodSpec):
    """A model server template: what it serves, how to run it."""

    containers: list[Container]
    supported_model_formats: list[SupportedModelFormat] | None = None
    protocol_versions: list[ProtocolVersion] | None = None
    multi_model: bool | None = None
    disabled: bool | None = None
    replicas: int | None = Field(default=None, ge=0)
    grpc_endpoint: str | None = None
    grpc_data_endpoint: str | None = None
    http_data_endpoint: str | None = None
    storage_helper: StorageHelper | None = None
    built_in_adapter: BuiltInAdapter | None = None
    worker_spec: WorkerSpec | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="size(self.containers) > 0",
            message="a serving runtime needs at least one container",
            check=lambda s: len(s.containers) > 0,
            field="containers",
        ),
    )


class ServingRuntime(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
    kind: Literal["ServingRuntime"] = "ServingRuntime"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServingRuntimeSpec
    status: JsonObject | None = None


class ClusterServingRuntime(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
    kind: Literal["ClusterServingRuntime"] = "ClusterServingRuntime"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServingRuntimeSpec
    status: JsonObject | None = None
