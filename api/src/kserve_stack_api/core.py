"""Kubernetes core types used inside the CRDs, typed where the controller reads them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kserve_stack_api.base import ApiModel, OpenModel

#: A resource quantity ("500m", "1Gi", 2): the API server's int-or-string.
Quantity = int | str

#: Any JSON object kept as it is (PodSpec fields the controller passes through).
JsonObject = dict[str, Any]


class ObjectMeta(OpenModel):
    """The parts of ``metadata`` the project reads; the API server owns the rest."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None


class ResourceRequirements(OpenModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class EnvVar(OpenModel):
    name: str
    value: str | None = None
    value_from: JsonObject | None = None


class ContainerPort(OpenModel):
    container_port: int
    name: str | None = None
    protocol: str | None = None


class VolumeMount(OpenModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None


class LocalObjectReference(ApiModel):
    name: str


class Toleration(OpenModel):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class ContainerFields(OpenModel):
    """The fields of a core/v1 Container (all optional here; ``name`` is filled in)."""

    name: str | None = None
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[JsonObject] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    liveness_probe: JsonObject | None = None
    readiness_probe: JsonObject | None = None
    startup_probe: JsonObject | None = None
    lifecycle: JsonObject | None = None
    security_context: JsonObject | None = None


class Container(ContainerFields):
    """A core/v1 Container: ``name`` is required as in a PodSpec."""

    name: str


class PodSpecFields(ApiModel):
    """The core/v1 PodSpec fields that KServe inlines into its component specs."""

    containers: list[Container] | None = None
    init_containers: list[Container] | None = None
    volumes: list[JsonObject] | None = None
    node_selector: dict[str, str] | None = None
    node_name: str | None = None
    affinity: JsonObject | None = None
    tolerations: list[Toleration] | None = None
    topology_spread_constraints: list[JsonObject] | None = None
    service_account_name: str | None = None
    service_account: str | None = Field(
        default=None, description="Deprecated alias of serviceAccountName."
    )
    automount_service_account_token: bool | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    security_context: JsonObject | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    preemption_policy: str | None = None
    scheduler_name: str | None = None
    runtime_class_name: str | None = None
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    restart_policy: str | None = None
    dns_policy: str | None = None
    dns_config: JsonObject | None = None
    host_network: bool | None = None
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_users: bool | None = None
    hostname: str | None = None
    hostname_override: str | None = None
    subdomain: str | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    share_process_namespace: bool | None = None
    enable_service_links: bool | None = None
    host_aliases: list[JsonObject] | None = None
    readiness_gates: list[JsonObject] | None = None
    scheduling_gates: list[JsonObject] | None = None
    resource_claims: list[JsonObject] | None = None
    resources: ResourceRequirements | None = None
    overhead: dict[str, Quantity] | None = None
    os: JsonObject | None = None

    def pod_spec_fields(self) -> dict[str, Any]:
        """The PodSpec part of this object, in wire form."""
        names = PodSpecFields.model_fields
        return {
            (info.alias or key): value
            for key, info in names.items()
            if (value := _wire(getattr(self, key))) is not None
        }


class PodSpec(PodSpecFields):
    """A core/v1 PodSpec on its own (LLMInferenceService ``template`` / ``worker``)."""


class Condition(ApiModel):
    """A status condition; severity is optional, as in KServe."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    severity: str | None = None
    last_transition_time: str | None = None


class Addressable(ApiModel):
    url: str | None = None
    name: str | None = None
    ca_certs: str | None = Field(default=None, alias="CACerts")
    audience: str | None = None


def _wire(value: Any) -> Any:
    if isinstance(value, ApiModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value
