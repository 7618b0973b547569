"""kustomize/controller/activator.yaml: its args are flags the activator accepts, its RBAC is
least privilege, and its Service is where the controller's defaults send traffic."""

from __future__ import annotations

from typing import Any

import yaml
from controller_factories import REPO
from kserve_stack_controller.activator.__main__ import build_parser, settings_from
from kserve_stack_controller.config import ControllerConfig

MANIFEST = REPO / "kustomize" / "controller" / "activator.yaml"
KUSTOMIZATION = REPO / "kustomize" / "controller" / "kustomization.yaml"


def _docs() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}


def test_listed_in_the_kustomization() -> None:
    assert "activator.yaml" in yaml.safe_load(KUSTOMIZATION.read_text())["resources"]


def test_args_are_accepted_and_ports_match() -> None:
    container = _docs()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    settings = settings_from(build_parser().parse_args(container["args"]))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port, "metrics": settings.metrics_port}
    annotations = _docs()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)


def test_service_is_the_default_target_of_the_routes() -> None:
    defaults = ControllerConfig().activator
    kustomize_namespace = yaml.safe_load(KUSTOMIZATION.read_text())["namespace"]
    service = _docs()["Service"]
    assert (service["metadata"]["name"], kustomize_namespace) == (
        defaults.service_name,
        defaults.namespace,
    )
    assert {"name": "http", "port": defaults.port, "targetPort": "http"} in service["spec"]["ports"]


def test_rbac_is_least_privilege() -> None:
    rules = _docs()["ClusterRole"]["rules"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # --wake metric (the manifest's mode) writes nothing.
    assert (
        "--wake=metric"
        in _docs()["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    assert granted == {
        ("discovery.k8s.io", "endpointslices"): {"get", "list", "watch"},
        ("", "services"): {"get"},
    }
