"""How an InferenceService is reached from outside: a Gateway API HTTPRoute attached to the
configured Gateway (canary backends weighted), or a networking/v1 Ingress.

A backend that may be at zero replicas (KEDA, ``minReplicas: 0``) is always reached through
the activator, as Knative's activator does in proxy mode: the backendRef names the
activator's Service and a RequestHeaderModifier filter on that backendRef names the
component's Service (``x-kserve-stack-target: NAMESPACE/SERVICE``). The route never changes
with the replica count, so no request races a route update on the way to or from zero; the
cost is one extra hop (the activator forwards to ready pod endpoints directly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kserve_stack_controller.builders.templating import TemplateArgs, render
from kserve_stack_controller.config import ActivatorConfig, IngressConfig
from kserve_stack_controller.constants import (
    HEADER_ACTIVATOR_HOLD_TIMEOUT,
    HEADER_ACTIVATOR_TARGET,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)

JsonDict = dict[str, Any]
EXPLAIN_PATH = r"^/v1/models/[\w-]+:explain$"


@dataclass(frozen=True)
class Backend:
    service: str
    weight: int
    #: Reach the service through the activator (it may be at zero replicas).
    activator: ActivatorConfig | None = None


def host_of(config: IngressConfig, args: TemplateArgs) -> str:
    return render(config.domain_template, args, "inferenceservice-config ingress.domainTemplate")


def path_of(config: IngressConfig, args: TemplateArgs) -> str | None:
    if not config.path_template:
        return None
    path = render(config.path_template, args, "inferenceservice-config ingress.pathTemplate")
    return "/" + path.strip("/")


def _activator_ref(backend: Backend, activator: ActivatorConfig, namespace: str | None) -> JsonDict:
    ref: JsonDict = {"group": "", "kind": "Service", "name": activator.service_name}
    if activator.namespace != namespace:
        ref["namespace"] = activator.namespace  # needs a ReferenceGrant in that namespace
    ref["port"] = activator.port
    ref["weight"] = backend.weight
    ref["filters"] = [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [
                    {"name": HEADER_ACTIVATOR_TARGET, "value": f"{namespace}/{backend.service}"},
                    {
                        "name": HEADER_ACTIVATOR_HOLD_TIMEOUT,
                        "value": str(activator.hold_timeout_seconds),
                    },
                ]
            },
        }
    ]
    return ref


def activator_grant(activator: ActivatorConfig, namespace: str) -> JsonDict:
    """The ReferenceGrant, in the activator's namespace, that lets the HTTPRoutes of
    ``namespace`` name the activator's Service (Gateway API ignores a cross-namespace
    backendRef without one). One per source namespace, shared by its InferenceServices."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {
            "name": f"{activator.service_name}-from-{namespace}",
            "namespace": activator.namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "spec": {
            "from": [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}
            ],
            "to": [{"group": "", "kind": "Service", "name": activator.service_name}],
        },
    }


def _hold_of(backends: Sequence[Backend]) -> int:
    """The longest time the activator may hold a request of these backends."""
    return max(
        (b.activator.hold_timeout_seconds for b in backends if b.activator is not None),
        default=0,
    )


def _backend_refs(backends: Sequence[Backend], namespace: str | None) -> list[JsonDict]:
    return [
        _activator_ref(b, b.activator, namespace)
        if b.activator is not None
        else {"group": "", "kind": "Service", "name": b.service, "port": 80, "weight": b.weight}
        for b in backends
    ]


def http_route(
    name: str,
    namespace: str | None,
    *,
    labels: dict[str, str],
    config: IngressConfig,
    args: TemplateArgs,
    backends: Sequence[Backend],
    explainer: Backend | None = None,
    timeout_s: int | None = None,
) -> JsonDict:
    host = host_of(config, args)
    path = path_of(config, args)
    refs = _backend_refs(backends, namespace)
    rules: list[JsonDict] = []
    rule_backends: list[Sequence[Backend]] = []  # the backends of each rule, in order
    if explainer is not None:
        rule_backends.append([explainer])
        rules.append(
            {
                "matches": [{"path": {"type": "RegularExpression", "value": EXPLAIN_PATH}}],
                "backendRefs": _backend_refs([explainer], namespace),
            }
        )
    main_rule: JsonDict = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": refs,
    }
    rules.append(main_rule)
    rule_backends.append(backends)
    hostnames = [host]
    if path is not None:
        rules.append(
            {
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "filters": [
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}
                        },
                    }
                ],
                "backendRefs": refs,
            }
        )
        rule_backends.append(backends)
        if config.ingress_domain not in hostnames:
            hostnames.append(config.ingress_domain)
    if timeout_s:
        # A request the activator holds first waits for a replica, then for the model.
        for rule, served in zip(rules, rule_backends, strict=True):
            rule["timeouts"] = {"request": f"{timeout_s + _hold_of(served)}s"}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": config.gateway_name,
                    "namespace": config.gateway_namespace,
                }
            ],
            "hostnames": hostnames,
            "rules": rules,
        },
    }


def ingress(
    name: str,
    namespace: str | None,
    *,
    labels: dict[str, str],
    config: IngressConfig,
    args: TemplateArgs,
    service: str,
) -> JsonDict:
    """An Ingress to the entry service (an Ingress cannot weight backends: no canary split)."""
    host = host_of(config, args)
    backend = {"service": {"name": service, "port": {"number": 80}}}
    spec: JsonDict = {
        "rules": [
            {
                "host": host,
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
            }
        ],
    }
    if config.ingress_class_name:
        spec["ingressClassName"] = config.ingress_class_name
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }
