"""The desired children of one InferenceService: the whole product logic in one pure call.

``build(inputs)`` defaults the spec, checks the deployment mode, selects the runtime, and
returns a Plan: the objects to apply (Deployments, Services, HPA / ScaledObject, HTTPRoute
or Ingress), the children to keep untouched (the stable revision during a canary), and what
status needs to know (revisions, traffic, url, address), plus one line per decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kserve_stack_api.core import PodSpecFields
from kserve_stack_api.inferenceservice import (
    ComponentExtensionSpec,
    InferenceService,
)
from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime

from kserve_stack_controller.builders.autoscaling import (
    Scaling,
    hpa,
    scaled_object,
    scaling_of,
)
from kserve_stack_controller.builders.defaulting import default_inference_service
from kserve_stack_controller.builders.routing import (
    Backend,
    activator_grant,
    host_of,
    http_route,
    ingress,
)
from kserve_stack_controller.builders.selection import SelectedRuntime, select_runtime
from kserve_stack_controller.builders.storage import model_storage
from kserve_stack_controller.builders.templating import TemplateArgs
from kserve_stack_controller.builders.workload import (
    Workload,
    base_labels,
    component_name,
    custom_pod,
    deployment,
    predictor_pod,
    revision_of,
    service,
)
from kserve_stack_controller.config import ControllerConfig
from kserve_stack_controller.constants import (
    ANN_AUTOSCALER_CLASS,
    ANN_DEPLOYMENT_MODE,
    ANN_METRIC_QUERY,
    ANN_STOP,
)
from kserve_stack_controller.errors import InvalidSpecError, UnsupportedDeploymentModeError

JsonDict = dict[str, Any]
SERVED_MODES = ("Standard", "RawDeployment")


@dataclass(frozen=True)
class LiveWorkload:
    """What the cluster runs now for a component's stable Deployment (read by the handler)."""

    revision: str | None
    replicas: int | None
    ready: bool = False


@dataclass(frozen=True)
class Inputs:
    isvc: InferenceService
    config: ControllerConfig
    namespace_runtimes: Sequence[ServingRuntime] = ()
    cluster_runtimes: Sequence[ClusterServingRuntime] = ()
    #: The live stable Deployment of each component, by component name.
    live: dict[str, LiveWorkload] = field(default_factory=dict)


@dataclass(frozen=True)
class TrafficSplit:
    revision: str
    percent: int
    latest: bool
    workload: str
    #: Routed through the activator: the workload may be at zero replicas.
    via_activator: bool = False


@dataclass
class ComponentPlan:
    name: str
    workloads: list[Workload]
    traffic: list[TrafficSplit]
    service: str
    latest_revision: str
    #: Scales to zero, so the route reaches its stable workload through the activator.
    behind_activator: bool = False


@dataclass
class Plan:
    isvc: InferenceService  # defaulted
    objects: list[JsonDict]
    #: (kind, name) of children to leave as they are (the stable revision during a canary).
    keep: set[tuple[str, str]]
    components: dict[str, ComponentPlan]
    runtime: SelectedRuntime | None
    url: str | None
    address: str
    stopped: bool
    decisions: list[str]
    #: Objects outside the owner's namespace that its children need (the activator's
    #: ReferenceGrant): shared by many owners, so neither owned nor pruned.
    shared: list[JsonDict] = field(default_factory=list)


def deployment_mode(isvc: InferenceService, config: ControllerConfig) -> str:
    annotations = isvc.metadata.annotations or {}
    mode = annotations.get(ANN_DEPLOYMENT_MODE) or config.deploy.default_deployment_mode
    if mode not in SERVED_MODES:
        raise UnsupportedDeploymentModeError(
            f"deployment mode {mode!r} is not served by kserve-stack: Serverless (Knative) and "
            "ModelMesh are not available; set the annotation serving.kserve.io/deploymentMode "
            "to Standard (or RawDeployment, its former name) or remove it"
        )
    return mode


def is_stopped(isvc: InferenceService) -> bool:
    return (isvc.metadata.annotations or {}).get(ANN_STOP, "").lower() == "true"


def autoscaler_class(isvc: InferenceService, config: ControllerConfig) -> str:
    annotations = isvc.metadata.annotations or {}
    return annotations.get(ANN_AUTOSCALER_CLASS) or config.autoscaler.default_class


def _pod_meta(
    component: ComponentExtensionSpec, runtime: SelectedRuntime | None
) -> tuple[dict[str, str], dict[str, str]]:
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    if runtime is not None:
        labels.update(runtime.spec.labels or {})
        annotations.update(runtime.spec.annotations or {})
    labels.update(component.labels or {})
    annotations.update(component.annotations or {})
    return labels, annotations


def _replicas(scaling: Scaling, stopped: bool, live: LiveWorkload | None) -> int | None:
    """Replicas the Deployment states: none when an autoscaler owns them (but wake from 0)."""
    if stopped:
        return 0
    if scaling.autoscaler == "none":
        return scaling.min_replicas
    if live is not None and live.replicas == 0 and scaling.min_replicas > 0:
        return scaling.min_replicas  # resumed after a stop: the autoscaler needs a replica
    return None  # the autoscaler (or whoever scales "external") owns the replicas


def build(inputs: Inputs) -> Plan:
    """Everything the InferenceService needs, or a ReconcileError that says why not."""
    config = inputs.config
    deployment_mode(inputs.isvc, config)
    isvc = default_inference_service(inputs.isvc, config)
    meta = isvc.metadata
    name, namespace = meta.name or "", meta.namespace
    args = TemplateArgs(
        name=name,
        namespace=namespace or "default",
        labels=meta.labels or {},
        annotations=meta.annotations or {},
        ingress_domain=config.ingress.ingress_domain,
    )
    stopped = is_stopped(isvc)
    autoscaler = autoscaler_class(isvc, config)
    decisions: list[str] = []
    objects: list[JsonDict] = []
    keep: set[tuple[str, str]] = set()
    components: dict[str, ComponentPlan] = {}
    predictor = isvc.spec.predictor

    # ---------------------------------------------------------------- predictor
    runtime: SelectedRuntime | None = None
    model = predictor.model
    if model is not None:
        protocol = model.protocol_version or config.inference_service.protocol_version
        runtime = select_runtime(
            model.model_format,
            protocol,
            inputs.namespace_runtimes,
            inputs.cluster_runtimes,
            requested=model.runtime,
        )
        how = "named by model.runtime" if model.runtime else "auto-selected"
        decisions.append(
            f"runtime {runtime.kind}/{runtime.name} {how} for model format "
            f"{model.model_format.name} over protocol {protocol}"
        )
        helper_off = (
            runtime.spec.storage_helper is not None and runtime.spec.storage_helper.disabled
        )
        storage = model_storage(
            None if helper_off else model.storage_uri, config.storage_initializer
        )
        if model.storage_uri and not helper_off:
            how = (
                "mounted read-only"
                if not storage.init_containers
                else "downloaded by the storage initializer"
            )
            decisions.append(f"model {model.storage_uri} {how} at /mnt/models")
        pod = predictor_pod(isvc, model, runtime, storage, args)
    else:
        pod = custom_pod(predictor, args, "spec.predictor")
    components["predictor"] = _component(
        isvc,
        "predictor",
        spec=predictor,
        pod=pod,
        runtime=runtime,
        autoscaler=autoscaler,
        stopped=stopped,
        inputs=inputs,
        objects=objects,
        keep=keep,
        decisions=decisions,
    )

    # ------------------------------------------------------ transformer, explainer
    predictor_host = f"{component_name(name, 'predictor')}.{namespace}"
    if isvc.spec.transformer is not None:
        extra = ("--model_name", name, "--predictor_host", predictor_host, "--http_port", "8080")
        pod = custom_pod(isvc.spec.transformer, args, "spec.transformer", extra)
        components["transformer"] = _component(
            isvc,
            "transformer",
            spec=isvc.spec.transformer,
            pod=pod,
            runtime=None,
            autoscaler=autoscaler,
            stopped=stopped,
            inputs=inputs,
            objects=objects,
            keep=keep,
            decisions=decisions,
        )
    if isvc.spec.explainer is not None:
        explainer = isvc.spec.explainer
        if explainer.art is not None and not explainer.containers:
            raise InvalidSpecError(
                "spec.explainer.art: the ART explainer image is not served by kserve-stack; "
                "give spec.explainer.containers"
            )
        pod = custom_pod(
            explainer,
            args,
            "spec.explainer",
            ("--model_name", name, "--predictor_host", predictor_host),
        )
        components["explainer"] = _component(
            isvc,
            "explainer",
            spec=explainer,
            pod=pod,
            runtime=None,
            autoscaler=autoscaler,
            stopped=stopped,
            inputs=inputs,
            objects=objects,
            keep=keep,
            decisions=decisions,
        )

    # ------------------------------------------------------------------ routing
    entry = components.get("transformer") or components["predictor"]
    address = f"http://{entry.service}.{namespace}.svc.cluster.local"
    url: str | None = None
    shared: list[JsonDict] = []
    ingress_config = config.ingress
    labels = base_labels(isvc, "ingress")
    if ingress_config.disable_ingress_creation:
        decisions.append("no HTTPRoute or Ingress: ingress creation is disabled")
    elif ingress_config.enable_gateway_api:
        activator = config.activator
        backends = [
            Backend(t.workload, t.percent, activator if t.via_activator else None)
            for t in entry.traffic
        ]
        explainer_backend = None
        if "explainer" in components:
            plan = components["explainer"]
            explainer_backend = Backend(
                plan.service, 100, activator if plan.behind_activator else None
            )
        objects.append(
            http_route(
                name,
                namespace,
                labels=labels,
                config=ingress_config,
                args=args,
                backends=backends,
                explainer=explainer_backend,
                timeout_s=predictor.timeout,
            )
        )
        if (
            namespace
            and namespace != activator.namespace
            and any(b.activator for b in [*backends, explainer_backend] if b)
        ):
            shared.append(activator_grant(activator, namespace))
        url = f"{ingress_config.url_scheme}://{host_of(ingress_config, args)}"
        decisions.append(
            f"HTTPRoute {name} on Gateway {ingress_config.kserve_ingress_gateway} for {url}"
        )
        for plan in components.values():
            if plan.behind_activator and (plan is entry or plan.name == "explainer"):
                decisions.append(
                    f"{plan.name}: routed through the activator "
                    f"{activator.namespace}/{activator.service_name}, which holds requests "
                    f"up to {activator.hold_timeout_seconds}s while it is at zero replicas"
                )
    else:
        objects.append(
            ingress(
                name,
                namespace,
                labels=labels,
                config=ingress_config,
                args=args,
                service=entry.service,
            )
        )
        url = f"{ingress_config.url_scheme}://{host_of(ingress_config, args)}"
        decisions.append(f"Ingress {name} for {url}")
        if entry.behind_activator:
            decisions.append(
                f"{entry.name}: an Ingress cannot name the activator's target, so a request "
                "that arrives at zero replicas is not held (use the Gateway API to hold it)"
            )
    if stopped:
        decisions.append("stopped by serving.kserve.io/stop: every Deployment scaled to 0")
    return Plan(isvc, objects, keep, components, runtime, url, address, stopped, decisions, shared)


def _component(
    isvc: InferenceService,
    component: str,
    *,
    spec: PodSpecFields,
    pod: JsonDict,
    runtime: SelectedRuntime | None,
    autoscaler: str,
    stopped: bool,
    inputs: Inputs,
    objects: list[JsonDict],
    keep: set[tuple[str, str]],
    decisions: list[str],
) -> ComponentPlan:
    assert isinstance(spec, ComponentExtensionSpec)
    name = isvc.metadata.name or ""
    namespace = isvc.metadata.namespace
    stable_name = component_name(name, component)
    pod_labels, pod_annotations = _pod_meta(spec, runtime)
    revision = revision_of({"spec": pod, "labels": pod_labels, "annotations": pod_annotations})
    scaling = scaling_of(spec, autoscaler)
    live = inputs.live.get(component)
    runtime_name = runtime.name if runtime else None
    strategy = spec.deployment_strategy
    percent = spec.canary_traffic_percent
    canary = (
        percent is not None
        and percent < 100
        and live is not None
        and live.revision is not None
        and live.revision != revision
    )
    workloads: list[Workload] = []
    traffic: list[TrafficSplit] = []
    behind_activator = (
        not stopped
        and scaling.autoscaler == "keda"
        and scaling.min_replicas == 0
        and inputs.config.activator.enabled
    )
    if canary:
        assert percent is not None and live is not None and live.revision is not None
        canary_name = f"{stable_name}-canary"
        keep.add(("Deployment", stable_name))
        stable = Workload(component, stable_name, "stable", pod, live.revision, None)
        canary_replicas = 0 if stopped else max(scaling.min_replicas, 1)
        new = Workload(component, canary_name, "canary", pod, revision, canary_replicas)
        # The stable revision keeps serving (and keeps its Service) beside the canary.
        stable_services = [service(isvc, stable)]
        traffic = [
            TrafficSplit(live.revision, 100 - percent, False, stable_name, behind_activator),
            TrafficSplit(revision, percent, True, canary_name),
        ]
        decisions.append(
            f"canary: {percent}% of {component} traffic to revision {revision} "
            f"({canary_name}), {100 - percent}% to revision {live.revision} ({stable_name})"
        )
    else:
        replicas = _replicas(scaling, stopped, live)
        new = Workload(component, stable_name, "stable", pod, revision, replicas)
        stable_services = []
        traffic = [TrafficSplit(revision, 100, True, stable_name, behind_activator)]
    workloads = [new]
    objects.append(
        deployment(
            isvc,
            new,
            pod_labels=pod_labels,
            pod_annotations=pod_annotations,
            runtime_name=runtime_name,
            strategy=strategy,
        )
    )
    objects.extend(stable_services)
    objects.append(service(isvc, new))
    labels = base_labels(isvc, component)
    if stopped or scaling.autoscaler in ("none", "external"):
        if not stopped:
            decisions.append(f"{component}: no autoscaler (autoscalerClass {scaling.autoscaler})")
    elif scaling.autoscaler == "hpa":
        objects.append(
            hpa(
                stable_name,
                namespace,
                labels=labels,
                component=spec,
                scaling=scaling,
                config=inputs.config.autoscaler,
            )
        )
        decisions.append(
            f"{component}: HPA {scaling.min_replicas}..{scaling.max_replicas} replicas"
        )
    else:
        query = (isvc.metadata.annotations or {}).get(ANN_METRIC_QUERY)
        objects.append(
            scaled_object(
                stable_name,
                namespace,
                labels=labels,
                component=spec,
                scaling=scaling,
                config=inputs.config.autoscaler,
                metric_query=query,
                activator=inputs.config.activator,
            )
        )
        decisions.append(
            f"{component}: KEDA ScaledObject {scaling.min_replicas}..{scaling.max_replicas} "
            "replicas"
            + (" (scales to zero)" if scaling.min_replicas == 0 else "")
            + (", woken by the activator's held requests" if behind_activator else "")
        )
    return ComponentPlan(component, workloads, traffic, stable_name, revision, behind_activator)
