"""How an InferenceService is reached from outside: a Gateway API HTTPRoute attached to the
configured Gateway (canary backends weighted), or a networking/v1 Ingress."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kserve_stack_controller.builders.templating import TemplateArgs, render
from kserve_stack_controller.config import IngressConfig

JsonDict = dict[str, Any]
EXPLAIN_PATH = r"^/v1/models/[\w-]+:explain$"


@dataclass(frozen=True)
class Backend:
    service: str
    weight: int


def host_of(config: IngressConfig, args: TemplateArgs) -> str:
    return render(config.domain_template, args, "inferenceservice-config ingress.domainTemplate")


def path_of(config: IngressConfig, args: TemplateArgs) -> str | None:
    if not config.path_template:
        return None
    path = render(config.path_template, args, "inferenceservice-config ingress.pathTemplate")
    return "/" + path.strip("/")


def _backend_refs(backends: Sequence[Backend]) -> list[JsonDict]:
    return [
        {"group": "", "kind": "Service", "name": b.service, "port": 80, "weight": b.weight}
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
    explainer: str | None = None,
    timeout_s: int | None = None,
) -> JsonDict:
    host = host_of(config, args)
    path = path_of(config, args)
    refs = _backend_refs(backends)
    rules: list[JsonDict] = []
    if explainer is not None:
        rules.append(
            {
                "matches": [{"path": {"type": "RegularExpression", "value": EXPLAIN_PATH}}],
                "backendRefs": _backend_refs([Backend(explainer, 100)]),
            }
        )
    main_rule: JsonDict = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": refs,
    }
    rules.append(main_rule)
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
        if config.ingress_domain not in hostnames:
            hostnames.append(config.ingress_domain)
    if timeout_s:
        for rule in rules:
            rule["timeouts"] = {"request": f"{timeout_s}s"}
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
