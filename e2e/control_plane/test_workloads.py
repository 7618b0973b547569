"""Workload controllers and the scheduler: a Deployment turns Ready, deleting it
garbage-collects its ReplicaSet and Pods, GPU pods land on GPU nodes only."""

from __future__ import annotations

from typing import Any

import pytest
from kss_e2e import Kube, wait_for

pytestmark = pytest.mark.control_plane

PAUSE = "registry.k8s.io/pause:3.10"


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": PAUSE,
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


def _gpu_pod(name: str, tolerate: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {"name": "main", "image": PAUSE, "resources": {"limits": {"nvidia.com/gpu": "1"}}}
        ],
    }
    if tolerate:
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_deployment_becomes_ready_and_is_garbage_collected(kube: Kube, namespace: str) -> None:
    kube.apply(_deployment("web", replicas=3), namespace=namespace)

    def ready() -> bool:
        dep = kube.apps.read_namespaced_deployment("web", namespace)
        return (dep.status.ready_replicas or 0) == 3 and dep.status.observed_generation == 1

    wait_for("deployment web to have 3 ready replicas", ready, timeout=90)
    pods = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" and p.spec.node_name for p in pods)
    assert all(p.status.pod_ip for p in pods), "every Running pod has an IP"
    replica_sets = kube.apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    assert len(replica_sets) == 1
    owner = replica_sets[0].metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("Deployment", "web")

    # Background propagation: the Deployment goes at once, the garbage collector
    # then removes the ReplicaSet it owned and that one's Pods.
    kube.apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")

    def collected() -> bool:
        rs = kube.apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
        left = kube.core.list_namespaced_pod(namespace, label_selector="app=web").items
        assert not rs and not left, f"{len(rs)} ReplicaSets and {len(left)} Pods left"
        return True

    wait_for("the ReplicaSet and Pods of web to be garbage-collected", collected, timeout=90)


def _gpu_nodes(kube: Kube) -> list[str]:
    return [
        n.metadata.name
        for n in kube.core.list_node().items
        if int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) > 0
    ]


def test_gpu_pod_lands_on_a_gpu_node(kube: Kube, namespace: str) -> None:
    gpu_nodes = _gpu_nodes(kube)
    if not gpu_nodes:
        pytest.skip("no node advertises nvidia.com/gpu (a CPU-only cluster)")
    kube.apply(_gpu_pod("gpu-job", tolerate=True), namespace=namespace)

    def running() -> Any:
        pod = kube.core.read_namespaced_pod("gpu-job", namespace)
        return pod if pod.status.phase == "Running" else None

    pod = wait_for("pod gpu-job to be Running", running, timeout=90)
    assert pod.spec.node_name in gpu_nodes


def test_gpu_pod_without_toleration_stays_pending(kube: Kube, namespace: str) -> None:
    if not _gpu_nodes(kube):
        pytest.skip("no node advertises nvidia.com/gpu (a CPU-only cluster)")
    kube.apply(_gpu_pod("gpu-untolerated", tolerate=False), namespace=namespace)

    def unschedulable() -> str:
        pod = kube.core.read_namespaced_pod("gpu-untolerated", namespace)
        cond = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
        if cond is not None and cond.status == "False" and cond.reason == "Unschedulable":
            return str(cond.message)
        return ""

    message = wait_for("the scheduler to report gpu-untolerated Unschedulable", unschedulable, 60)
    assert "nvidia.com/gpu" in message, message
    pod = kube.core.read_namespaced_pod("gpu-untolerated", namespace)
    assert pod.spec.node_name is None
