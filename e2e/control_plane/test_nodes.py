"""The cluster's nodes: every node Ready; on the local control plane, the kwok
CPU and GPU nodes with their capacity, labels and taint."""

from __future__ import annotations

import pytest
from kss_e2e import Cluster, Kube

pytestmark = pytest.mark.control_plane


def _ready(node: object) -> bool:
    conditions = node.status.conditions or []  # type: ignore[attr-defined]
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_every_node_is_ready(kube: Kube) -> None:
    nodes = kube.core.list_node().items
    assert nodes, "the cluster has no node"
    not_ready = [n.metadata.name for n in nodes if not _ready(n)]
    assert not not_ready, f"nodes not Ready: {not_ready}"


def test_local_cluster_has_kwok_cpu_and_gpu_nodes(kube: Kube, cluster: Cluster) -> None:
    if cluster.backend != "local":
        pytest.skip(
            f"kwok nodes exist only on the local control plane (backend: {cluster.backend})"
        )
    nodes = {
        n.metadata.name: n
        for n in kube.core.list_node().items
        if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"
    }
    assert sorted(nodes) == ["kwok-cpu-0", "kwok-cpu-1", "kwok-gpu-0"]
    assert all(_ready(n) for n in nodes.values())

    gpu = nodes["kwok-gpu-0"]
    assert gpu.status.capacity["nvidia.com/gpu"] == "8"
    assert gpu.status.allocatable["nvidia.com/gpu"] == "8"
    assert gpu.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in gpu.spec.taints)
    for name in ("kwok-cpu-0", "kwok-cpu-1"):
        cpu = nodes[name]
        assert "nvidia.com/gpu" not in cpu.status.capacity
        assert not cpu.spec.taints
