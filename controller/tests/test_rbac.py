"""The controller's ClusterRole: no wildcards, and every kind it touches is covered."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from controller_factories import REPO
from kserve_stack_controller.apply import CHILD_KINDS
from kserve_stack_controller.builtin_runtimes import builtin_manifests

RBAC = REPO / "kustomize" / "controller" / "rbac.yaml"
WRITE = {"get", "list", "watch", "create", "patch", "update", "delete"}
# kind -> (API group, resource) as the ClusterRole must name them.
RESOURCE_OF = {
    "Deployment": ("apps", "deployments"),
    "Service": ("", "services"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "Ingress": ("networking.k8s.io", "ingresses"),
}


def _rules() -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    return list(role["rules"])


def _verbs(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in _rules():
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_no_wildcards() -> None:
    for rule in _rules():
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            for value in rule.get(key, []):
                assert "*" not in value, f"wildcard in {key}: {rule}"


@pytest.mark.parametrize("kind", CHILD_KINDS)
def test_every_child_kind_is_writable(kind: str) -> None:
    assert _verbs(*RESOURCE_OF[kind]) == WRITE


@pytest.mark.parametrize(
    ("group", "resource", "needed"),
    [
        ("serving.kserve.io", "inferenceservices", {"get", "list", "watch", "patch"}),
        ("serving.kserve.io", "inferenceservices/status", {"patch"}),
        ("serving.kserve.io", "servingruntimes", {"get", "list", "watch"}),
        ("serving.kserve.io", "clusterservingruntimes", {"get", "list", "watch"}),
        ("", "configmaps", {"get", "list", "watch"}),
        ("", "events", {"create"}),
    ],
)
def test_reads_and_status(group: str, resource: str, needed: set[str]) -> None:
    assert needed <= _verbs(group, resource)


def test_no_secret_access_and_runtimes_read_only() -> None:
    assert not _verbs("", "secrets")
    assert not _verbs("serving.kserve.io", "servingruntimes") & {"create", "patch", "delete"}


def test_reference_grants_writable_in_the_activator_namespace_only() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    assert not _verbs("gateway.networking.k8s.io", "referencegrants")  # not cluster-wide
    role = next(d for d in docs if d["metadata"]["name"].endswith("-reference-grants"))
    assert role["rules"] == [{"apiGroups": ["gateway.networking.k8s.io"],
                              "resources": ["referencegrants"],
                              "verbs": ["get", "create", "patch"]}]  # fmt: skip
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert any(b["roleRef"]["name"] == role["metadata"]["name"] for b in bindings)


def test_webhook_secret_readable_and_renewable_by_name_only() -> None:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    role = next(d for d in docs if d["metadata"]["name"].endswith("-webhook-tls"))
    by_verbs = {tuple(r["verbs"]): r.get("resourceNames") for r in role["rules"]}
    assert by_verbs == {("get", "update"): ["kserve-stack-webhook-tls"], ("create",): None}
    assert all(r["resources"] == ["secrets"] for r in role["rules"])
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert any(b["roleRef"]["name"] == role["metadata"]["name"] for b in bindings)


def test_builtin_runtimes_writable_by_name_only() -> None:
    names = sorted(m["metadata"]["name"] for m in builtin_manifests())
    rules = [r for r in _rules() if "clusterservingruntimes" in r["resources"]]
    patch = [r for r in rules if "patch" in r["verbs"]]
    assert [r.get("resourceNames") for r in patch] == [names]
    assert not any({"update", "delete"} & set(r["verbs"]) for r in rules)
