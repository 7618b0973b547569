"""LLMInferenceService and LLMInferenceServiceConfig, served as v1alpha1 and v1alpha2.

Both versions share one spec; v1alpha2 (the storage version) adds ``kvCacheOffloading``,
``model.confidential`` and the ``appliedConfigs`` / ``workloads`` status, v1alpha1 keeps
``model.criticality``. A config is a partial spec that ``baseRefs`` merge underneath a
service, so every field of the spec is optional at the schema level.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from kserve_stack_api.base import ApiModel, Invariant
from kserve_stack_api.core import (
    Addressable,
    Condition,
    JsonObject,
    LocalObjectReference,
    ObjectMeta,
    PodSpec,
    Quantity,
)

NAME_MAX = 253


class LoRASpec(ApiModel):
    # Kept free-form as in KServe: each adapter is a model spec (uri, name).
    adapters: Any = Field(default=None, description="LoRA adapters to load (uri, name).")
    max_adapters: int | None = Field(default=None, ge=1)
    max_cpu_adapters: int | None = Field(default=None, ge=1)
    max_rank: int | None = Field(default=None, ge=1)


class LLMModelSpecBase(ApiModel):
    uri: str = Field(description="Where the weights live: hf://, s3://, pvc://, oci://, ...")
    name: str | None = Field(default=None, description="The served model name (OpenAI 'model').")
    lora: LoRASpec | None = None


class LLMModelSpecV1Alpha1(LLMModelSpecBase):
    criticality: Literal["Critical", "Standard", "Sheddable"] | None = None


class ConfidentialSpec(ApiModel):
    enabled: bool
    resource_id: str | None = None


class LLMModelSpecV1Alpha2(LLMModelSpecBase):
    confidential: ConfidentialSpec | None = None


class ParallelismSpec(ApiModel):
    tensor: int | None = Field(default=None, ge=1)
    pipeline: int | None = Field(default=None, ge=1)
    data: int | None = Field(default=None, ge=1)
    data_local: int | None = Field(default=None, ge=1)
    data_rpc_port: int | None = Field(default=None, ge=1, le=65535, alias="dataRPCPort")
    expert: bool | None = None


class HPAScaling(ApiModel):
    behavior: JsonObject | None = None


class KEDAScaling(ApiModel):
    polling_interval: int | None = Field(default=None, ge=1)
    cooldown_period: int | None = Field(default=None, ge=0)
    initial_cooldown_period: int | None = Field(default=None, ge=0)
    idle_replica_count: int | None = Field(default=None, ge=0)
    fallback: JsonObject | None = None
    advanced: JsonObject | None = None


class WVAScaling(ApiModel):
    """Workload-variant autoscaling: exactly one of an HPA or a KEDA ScaledObject."""

    hpa: HPAScaling | None = None
    keda: KEDAScaling | None = None
    variant_cost: str | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="has(self.hpa) != has(self.keda)",
            message="set exactly one of hpa and keda",
            check=lambda w: (w.hpa is None) != (w.keda is None),
        ),
    )


class ScalingSpec(ApiModel):
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int = Field(ge=1)
    wva: WVAScaling | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
            check=lambda s: s.min_replicas is None or s.min_replicas <= s.max_replicas,
            field="minReplicas",
        ),
    )


_REPLICAS_XOR_SCALING = Invariant(
    cel="!(has(self.replicas) && has(self.scaling))",
    message="replicas and scaling are exclusive: scaling autoscales, replicas is fixed",
    check=lambda w: w.replicas is None or w.scaling is None,
    field="scaling",
)


class WorkloadSpec(ApiModel):
    """One serving workload: a pod template, and a worker template for multi-node."""

    replicas: int | None = Field(default=None, ge=0)
    scaling: ScalingSpec | None = None
    parallelism: ParallelismSpec | None = None
    template: PodSpec | None = None
    worker: PodSpec | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (_REPLICAS_XOR_SCALING,)


class ObjectRef(ApiModel):
    name: str = Field(max_length=NAME_MAX)
    namespace: str | None = Field(default=None, max_length=63)


class GatewayRef(ObjectRef):
    section_name: str | None = None


class HTTPRouteSpec(ApiModel):
    refs: list[LocalObjectReference] | None = Field(
        default=None, description="Existing HTTPRoutes to use instead of a managed one."
    )
    spec: JsonObject | None = Field(
        default=None, description="An HTTPRoute spec for the managed route (empty: defaults)."
    )


class RouteSpec(ApiModel):
    http: HTTPRouteSpec | None = None
    group: str | None = None
    weight: int | None = Field(default=None, ge=0, le=1_000_000)


class GatewaySpec(ApiModel):
    refs: list[GatewayRef] | None = None


class IngressSpec(ApiModel):
    refs: list[ObjectRef] | None = None


class InferencePoolSpec(ApiModel):
    ref: LocalObjectReference | None = Field(
        default=None, description="An existing InferencePool to route to."
    )
    spec: JsonObject | None = Field(
        default=None, description="An InferencePool spec for the managed pool."
    )


class ConfigMapKeyRef(ApiModel):
    name: str = ""
    key: str
    optional: bool | None = None


class SchedulerConfig(ApiModel):
    inline: JsonObject | None = Field(
        default=None, description="The endpoint picker's configuration, inline."
    )
    ref: ConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key holding the endpoint picker's configuration."
    )

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="!(has(self.inline) && has(self.ref))",
            message="set at most one of inline and ref",
            check=lambda c: c.inline is None or c.ref is None,
        ),
    )


class SchedulerSpec(ApiModel):
    pool: InferencePoolSpec | None = None
    template: PodSpec | None = Field(
        default=None, description="The endpoint picker's pod (empty: the default picker)."
    )
    config: SchedulerConfig | None = None
    replicas: int | None = Field(default=None, ge=0)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class RouterSpec(ApiModel):
    route: RouteSpec | None = None
    gateway: GatewaySpec | None = None
    ingress: IngressSpec | None = None
    scheduler: SchedulerSpec | None = None


class StorageInitializerSpec(ApiModel):
    enabled: bool | None = None


class TracingSpec(ApiModel):
    exporter: str | None = None
    exporter_endpoint: str | None = None
    sampler: str | None = None
    sampler_arg: str | None = None


class KVCacheOffloadingSpec(ApiModel):
    cpu: Quantity = Field(description="Host memory for offloaded KV-cache blocks.")
    eviction_policy: Literal["lru", "arc"] | None = None
    secondary: list[JsonObject] | None = None


class _LLMSpecCommon(WorkloadSpec):
    prefill: WorkloadSpec | None = Field(
        default=None, description="A separate prefill workload (disaggregated serving)."
    )
    router: RouterSpec | None = None
    base_refs: list[LocalObjectReference] | None = Field(
        default=None, description="LLMInferenceServiceConfigs merged under this spec, in order."
    )
    storage_initializer: StorageInitializerSpec | None = None
    tracing: TracingSpec | None = None


class LLMInferenceServiceSpecV1Alpha1(_LLMSpecCommon):
    model: LLMModelSpecV1Alpha1 | None = None


class LLMInferenceServiceSpecV1Alpha2(_LLMSpecCommon):
    model: LLMModelSpecV1Alpha2 | None = None
    kv_cache_offloading: KVCacheOffloadingSpec | None = None


class AppliedConfig(ApiModel):
    name: str = Field(max_length=NAME_MAX)
    namespace: str = Field(max_length=63)
    source: Literal["Preset", "UserRef"]


class ObjectTypedRef(ApiModel):
    api_group: str | None = None
    kind: str
    name: str


class WorkloadRef(ObjectTypedRef):
    ready_replicas: int | None = None


class WorkloadsStatus(ApiModel):
    primary: WorkloadRef | None = None
    prefill: WorkloadRef | None = None
    scheduler: WorkloadRef | None = None
    service: ObjectTypedRef | None = None


class LLMInferenceServiceStatusV1Alpha1(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    url: str | None = None
    address: Addressable | None = None
    addresses: list[Addressable] | None = None
    annotations: dict[str, str] | None = None
    router: JsonObject | None = None


class LLMInferenceServiceStatusV1Alpha2(LLMInferenceServiceStatusV1Alpha1):
    applied_configs: list[AppliedConfig] | None = None
    workloads: WorkloadsStatus | None = None


class LLMInferenceServiceV1Alpha1(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
    kind: Literal["LLMInferenceService"] = "LLMInferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LLMInferenceServiceSpecV1Alpha1
    status: LLMInferenceServiceStatusV1Alpha1 | None = None


class LLMInferenceServiceV1Alpha2(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha2"] = "serving.kserve.io/v1alpha2"
    kind: Literal["LLMInferenceService"] = "LLMInferenceService"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LLMInferenceServiceSpecV1Alpha2
    status: LLMInferenceServiceStatusV1Alpha2 | None = None


class LLMInferenceServiceConfigV1Alpha1(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
    kind: Literal["LLMInferenceServiceConfig"] = "LLMInferenceServiceConfig"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LLMInferenceServiceSpecV1Alpha1
    status: JsonObject | None = None


class LLMInferenceServiceConfigV1Alpha2(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha2"] = "serving.kserve.io/v1alpha2"
    kind: Literal["LLMInferenceServiceConfig"] = "LLMInferenceServiceConfig"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LLMInferenceServiceSpecV1Alpha2
    status: JsonObject | None = None
