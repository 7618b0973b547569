"""The autoscaler of a component, chosen by ``serving.kserve.io/autoscalerClass``:

- ``hpa``: an autoscaling/v2 HorizontalPodAutoscaler on cpu or memory;
- ``keda``: a KEDA ScaledObject (cpu/memory triggers, Prometheus triggers from
  ``autoScaling.metrics`` or for concurrency/rps); ``minReplicas: 0`` scales to zero, and
  the activator's held requests (``kserve_stack_activator_pending_requests``) wake it;
- ``none`` / ``external``: no autoscaler; ``none`` pins the replicas to ``minReplicas``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kserve_stack_api.inferenceservice import ComponentExtensionSpec

from kserve_stack_controller.config import ActivatorConfig, AutoscalerConfig
from kserve_stack_controller.constants import ACTIVATOR_PENDING_METRIC
from kserve_stack_controller.errors import InvalidSpecError

JsonDict = dict[str, Any]
CLASSES = ("hpa", "keda", "none", "external")


@dataclass(frozen=True)
class Scaling:
    """Replica bounds of a component after defaulting."""

    autoscaler: str
    min_replicas: int
    max_replicas: int


def _metric(component: ComponentExtensionSpec) -> str:
    return component.scale_metric or "cpu"


def scaling_of(component: ComponentExtensionSpec, autoscaler: str) -> Scaling:
    if autoscaler not in CLASSES:
        raise InvalidSpecError(
            f"metadata.annotations[serving.kserve.io/autoscalerClass]: {autoscaler!r} is not "
            f"one of {', '.join(CLASSES)}"
        )
    low = component.min_replicas if component.min_replicas is not None else 1
    if low == 0 and autoscaler == "hpa":
        raise InvalidSpecError(
            "spec.predictor.minReplicas: 0 needs autoscalerClass keda (an HPA cannot scale to zero)"
        )
    metric = _metric(component)
    if autoscaler == "hpa" and metric not in ("cpu", "memory"):
        raise InvalidSpecError(
            f"spec.predictor.scaleMetric: {metric} needs autoscalerClass keda; an HPA scales "
            "on cpu or memory"
        )
    high = component.max_replicas or max(low, 1)
    return Scaling(autoscaler, low, max(high, low))


def hpa(
    name: str,
    namespace: str | None,
    *,
    labels: dict[str, str],
    component: ComponentExtensionSpec,
    scaling: Scaling,
    config: AutoscalerConfig,
) -> JsonDict:
    metric = _metric(component)
    if metric not in ("cpu", "memory"):
        raise InvalidSpecError(
            f"scaleMetric: {metric} needs autoscalerClass keda; an HPA scales on cpu or memory"
        )
    target_type = component.scale_metric_type or "Utilization"
    target: JsonDict = {"type": target_type}
    value = component.scale_target or config.default_cpu_utilization
    if target_type == "Utilization":
        target["averageUtilization"] = value
    else:
        target["averageValue"] = str(value) if metric == "cpu" else f"{value}Mi"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(scaling.min_replicas, 1),
            "maxReplicas": scaling.max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": metric, "target": target}}],
        },
    }


def _prometheus_trigger(server: str, query: str, threshold: str) -> JsonDict:
    return {
        "type": "prometheus",
        "metadata": {"serverAddress": server, "query": query, "threshold": threshold},
    }


def activator_trigger(name: str, namespace: str | None, config: AutoscalerConfig) -> JsonDict:
    """Wakes the Deployment from zero: active as soon as the activator holds one request."""
    query = f'sum({ACTIVATOR_PENDING_METRIC}{{namespace="{namespace}",service="{name}"}})'
    trigger = _prometheus_trigger(config.prometheus_server_address, query, "1")
    trigger["metadata"]["activationThreshold"] = "0"
    trigger["name"] = "activator-pending-requests"
    return trigger


def keda_triggers(
    name: str,
    namespace: str | None,
    *,
    component: ComponentExtensionSpec,
    scaling: Scaling,
    config: AutoscalerConfig,
    metric_query: str | None,
    activator: ActivatorConfig | None = None,
) -> list[JsonDict]:
    """KEDA triggers from ``autoScaling.metrics``, else from scaleMetric / scaleTarget; plus,
    when the component scales to zero behind the activator, the activator's trigger."""
    triggers = _scaling_triggers(
        name,
        namespace,
        component=component,
        scaling=scaling,
        config=config,
        metric_query=metric_query,
    )
    if scaling.min_replicas == 0 and activator is not None and activator.enabled:
        triggers.append(activator_trigger(name, namespace, config))
    return triggers


def _scaling_triggers(
    name: str,
    namespace: str | None,
    *,
    component: ComponentExtensionSpec,
    scaling: Scaling,
    config: AutoscalerConfig,
    metric_query: str | None,
) -> list[JsonDict]:
    triggers: list[JsonDict] = []
    for i, metric in enumerate((component.auto_scaling or {}).get("metrics") or []):
        kind = metric.get("type")
        if kind == "Resource":
            resource = metric.get("resource") or {}
            target = resource.get("target") or {}
            value = target.get("averageUtilization") or target.get("averageValue") or 80
            triggers.append(
                {
                    "type": resource.get("name", "cpu"),
                    "metricType": target.get("type", "Utilization"),
                    "metadata": {"value": str(value)},
                }
            )
        elif kind == "External":
            external = metric.get("external") or {}
            source = external.get("metric") or {}
            if source.get("backend", "prometheus") != "prometheus" or not source.get("query"):
                raise InvalidSpecError(
                    f"autoScaling.metrics[{i}].external.metric: needs backend prometheus and "
                    "a query"
                )
            target = external.get("target") or {}
            threshold = target.get("value") or target.get("averageValue") or "1"
            triggers.append(
                _prometheus_trigger(
                    source.get("serverAddress") or config.prometheus_server_address,
                    source["query"],
                    str(threshold),
                )
            )
        else:
            raise InvalidSpecError(
                f"autoScaling.metrics[{i}].type: {kind!r} is not Resource or External"
            )
    if triggers:
        return triggers
    metric = _metric(component)
    target = component.scale_target
    selector = f'namespace="{namespace}",pod=~"{name}-.*"'
    if metric_query:
        return [
            _prometheus_trigger(config.prometheus_server_address, metric_query, str(target or 1))
        ]
    if metric == "concurrency":
        query = f"sum(kserve_stack_inflight_requests{{{selector}}})"
        return [_prometheus_trigger(config.prometheus_server_address, query, str(target or 1))]
    if metric == "rps":
        query = f"sum(rate(kserve_stack_requests_total{{{selector}}}[1m]))"
        return [_prometheus_trigger(config.prometheus_server_address, query, str(target or 1))]
    value = target or config.default_cpu_utilization
    resource_trigger = {
        "type": metric,
        "metricType": component.scale_metric_type or "Utilization",
        "metadata": {"value": str(value)},
    }
    if scaling.min_replicas == 0:
        # KEDA cannot scale to zero on cpu/memory alone: the request rate says when it is idle.
        query = f"sum(rate(kserve_stack_requests_total{{{selector}}}[1m]))"
        return [resource_trigger, _prometheus_trigger(config.prometheus_server_address, query, "1")]
    return [resource_trigger]


def scaled_object(
    name: str,
    namespace: str | None,
    *,
    labels: dict[str, str],
    component: ComponentExtensionSpec,
    scaling: Scaling,
    config: AutoscalerConfig,
    metric_query: str | None = None,
    activator: ActivatorConfig | None = None,
) -> JsonDict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "triggers": keda_triggers(
                name,
                namespace,
                component=component,
                scaling=scaling,
                config=config,
                metric_query=metric_query,
                activator=activator,
            ),
        },
    }
