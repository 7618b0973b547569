"""The controller's configuration: the ConfigMap ``inferenceservice-config``.

Each key of the ConfigMap holds one JSON (or YAML) document, as in KServe; a key that is
absent takes the defaults below. Every field is documented once, here; ``docs/controller``
renders this module's defaults (``kserve-stack config-defaults``). The controller watches the
ConfigMap: a change applies to the next reconcile of every InferenceService, no restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

CONFIGMAP_NAME = "inferenceservice-config"


class _Section(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class IngressConfig(_Section):
    """Key ``ingress``: how InferenceServices are exposed outside the cluster."""

    enable_gateway_api: bool = Field(
        default=True,
        description="Route with a Gateway API HTTPRoute (true) or a networking/v1 Ingress.",
    )
    kserve_ingress_gateway: str = Field(
        default="envoy-gateway-system/kserve-ingress-gateway",
        description="NAMESPACE/NAME of the Gateway the HTTPRoutes attach to (Envoy Gateway).",
    )
    ingress_class_name: str | None = Field(
        default="envoy", description="ingressClassName of the Ingress objects (Ingress mode)."
    )
    ingress_domain: str = Field(
        default="example.com", description="The domain substituted as {{ .IngressDomain }}."
    )
    domain_template: str = Field(
        default="{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}",
        description="The host of an InferenceService; also {{ .Annotations.KEY }}, "
        "{{ .Labels.KEY }}.",
    )
    path_template: str = Field(
        default="",
        description="When set (e.g. /serving/{{ .Namespace }}/{{ .Name }}), the service is "
        "also reachable under this path on the ingress domain; the prefix is stripped.",
    )
    url_scheme: Literal["http", "https"] = Field(
        default="http", description="Scheme of status.url."
    )
    disable_ingress_creation: bool = Field(
        default=False, description="Create no HTTPRoute or Ingress (cluster-local services)."
    )

    @property
    def gateway_namespace(self) -> str:
        return self.kserve_ingress_gateway.partition("/")[0]

    @property
    def gateway_name(self) -> str:
        return self.kserve_ingress_gateway.partition("/")[2]


class StorageInitializerConfig(_Section):
    """Key ``storageInitializer``: the init container that downloads ``storageUri``."""

    image: str = Field(
        default="kserve-stack/runtimes:0.1.0",
        description="Image with the kserve-stack-storage-initializer command.",
    )
    command: list[str] = Field(
        default=["kserve-stack-storage-initializer"],
        description="The command of the init container (its args are SRC DEST).",
    )
    cpu_request: str = "100m"
    cpu_limit: str = "1"
    memory_request: str = "100Mi"
    memory_limit: str = "1Gi"
    cache_size: str | None = Field(
        default=None,
        description="sizeLimit of the emptyDir the model is downloaded into (none: unbounded).",
    )
    enable_direct_pvc_volume_mount: bool = Field(
        default=True,
        description="Mount pvc:// models read-only into the runtime instead of copying them.",
    )


class DeployConfig(_Section):
    """Key ``deploy``: the deployment mode."""

    default_deployment_mode: Literal["Standard", "RawDeployment"] = Field(
        default="Standard",
        description="The only modes served; Serverless (Knative) is rejected with a message.",
    )


class ResourcesConfig(_Section):
    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"cpu": "1", "memory": "2Gi"})


class InferenceServiceDefaults(_Section):
    """Key ``inferenceService``: defaults of every component."""

    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig,
        description="Resources of a model container that states none (per key: requests/limits "
        "set in the spec win).",
    )
    protocol_version: Literal["v1", "v2"] = Field(
        default="v1", description="Protocol of a model that states none."
    )


class AutoscalerConfig(_Section):
    """Key ``autoscaler``: defaults of the HPA / KEDA objects."""

    default_class: Literal["hpa", "keda", "none", "external"] = Field(
        default="hpa", description="Autoscaler of an InferenceService without the annotation."
    )
    default_cpu_utilization: int = Field(
        default=80, ge=1, description="Target CPU utilisation (percent) when none is stated."
    )
    prometheus_server_address: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="Prometheus that KEDA's prometheus triggers query.",
    )


class ActivatorConfig(_Section):
    """Key ``activator``: scale from zero holds the first request (``kserve-stack-activator``).

    A component that scales to zero (``minReplicas: 0``, autoscalerClass ``keda``) is always
    routed through the activator: it forwards at once while the component has ready
    endpoints, and holds requests while it has none. The activator is deployed once per
    cluster (``kustomize/controller/activator.yaml``); its image and flags live there.
    """

    enabled: bool = Field(
        default=True,
        description="Route scale-to-zero components through the activator and add its "
        "pending-requests trigger to their ScaledObject. false: the route goes straight to "
        "the component, and a request that arrives at zero replicas fails.",
    )
    service_name: str = Field(
        default="kserve-stack-activator", description="Name of the activator's Service."
    )
    namespace: str = Field(
        default="kserve",
        description="Namespace of the activator's Service. An HTTPRoute in another namespace "
        "needs a ReferenceGrant there (Gateway API's rule for cross-namespace backends).",
    )
    port: int = Field(default=80, ge=1, le=65535, description="Port of the activator's Service.")
    hold_timeout_seconds: int = Field(
        default=300,
        ge=1,
        description="How long the activator holds a request for a component at zero before "
        "it answers 504 (sent in the x-kserve-stack-hold-timeout header; the activator caps "
        "it at its own --max-hold-timeout).",
    )


class ControllerConfig(_Section):
    """Every key of ``inferenceservice-config`` (the ConfigMap)."""

    ingress: IngressConfig = Field(default_factory=IngressConfig)
    storage_initializer: StorageInitializerConfig = Field(default_factory=StorageInitializerConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    inference_service: InferenceServiceDefaults = Field(default_factory=InferenceServiceDefaults)
    autoscaler: AutoscalerConfig = Field(default_factory=AutoscalerConfig)
    activator: ActivatorConfig = Field(default_factory=ActivatorConfig)


class ConfigError(ValueError):
    """The ConfigMap holds something the controller cannot use; the message names the key."""


def from_configmap_data(data: Mapping[str, str] | None) -> ControllerConfig:
    """Parse the ConfigMap's ``data``: one JSON/YAML document per key; unknown keys ignored."""
    sections: dict[str, Any] = {}
    known = {info.alias or name for name, info in ControllerConfig.model_fields.items()}
    for key, text in (data or {}).items():
        if key not in known:
            continue  # KServe keys we do not use (explainers, logger, ...) are left alone.
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ConfigError(
                    f"{CONFIGMAP_NAME}: key {key!r} is neither JSON nor YAML: {err}"
                ) from None
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{CONFIGMAP_NAME}: key {key!r} must hold an object")
        sections[key] = value
    try:
        return ControllerConfig.model_validate(sections)
    except ValidationError as err:
        problems = "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in err.errors()
        )
        raise ConfigError(f"{CONFIGMAP_NAME}: {problems}") from None


def to_configmap_data(config: ControllerConfig) -> dict[str, str]:
    """The ConfigMap ``data`` that holds ``config`` (one JSON document per key)."""
    dumped = config.model_dump(by_alias=True, mode="json")
    return {key: json.dumps(value, indent=2, sort_keys=True) for key, value in dumped.items()}
