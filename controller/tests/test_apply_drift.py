"""The apply layer tells a hand edit of a child from fields others add, and puts list items
that another manager added back the way they were applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kserve_stack_controller.apply import Applier
from kserve_stack_controller.errors import ReconcileError
from kubernetes.client.exceptions import ApiException

OWNER = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "ns", "uid": "u-1"},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "iris-predictor", "namespace": "ns", "labels": {"a": "b"}},
    "spec": {"selector": {"app": "iris"}, "ports": [{"name": "http", "port": 80}]},
}


class RecordingKube:
    """Answers apply as an API server does while another manager owns a hand-added port:
    the port stays beside ours, or (``refuse``) the apply is refused for a duplicate port
    name. A merge patch of the spec replaces the list."""

    def __init__(self, extra_port: bool = False, refuse: bool = False) -> None:
        self.extra_port = extra_port
        self.refuse = refuse
        self.merge_patches: list[dict[str, Any]] = []

    def apply(self, obj: dict[str, Any], field_manager: str, force: bool = True) -> dict[str, Any]:
        if self.extra_port and self.refuse:
            raise ApiException(status=422, reason="Invalid: spec.ports[1].name: Duplicate")
        live = copy.deepcopy(obj)
        live["spec"]["clusterIP"] = "10.0.0.7"  # server-assigned: no drift
        for port in live["spec"]["ports"]:
            port["protocol"] = "TCP"
        if self.extra_port:
            live["spec"]["ports"].insert(0, {"name": "http", "port": 9999, "protocol": "TCP"})
        return live

    def merge_patch(
        self, kind: str, name: str, namespace: str | None, body: dict[str, Any], field_manager: str
    ) -> dict[str, Any]:
        self.merge_patches.append(body)
        self.extra_port = False
        return {}

    def list(self, *_: Any) -> list[dict[str, Any]]:
        return []


def test_defaults_and_status_are_not_drift_but_edits_are() -> None:
    applier = Applier(RecordingKube())  # type: ignore[arg-type]
    applier.apply_children(OWNER, [copy.deepcopy(SERVICE)], set())
    live = copy.deepcopy(SERVICE)
    live["metadata"]["ownerReferences"] = [{"apiVersion": OWNER["apiVersion"], "kind":
        "InferenceService", "name": "iris", "uid": "u-1", "controller": True,
        "blockOwnerDeletion": True}]  # fmt: skip
    live["metadata"]["resourceVersion"] = "42"
    live["spec"]["clusterIP"] = "10.0.0.7"
    live["spec"]["ports"][0]["protocol"] = "TCP"
    live["status"] = {"loadBalancer": {}}
    assert not applier.drifted("u-1", live)

    # Our own apply of an older desired state is no edit, whatever it holds.
    older = copy.deepcopy(live)
    older["spec"]["ports"][0]["port"] = 8080
    older["metadata"]["managedFields"] = [{"manager": "kserve-stack-controller"},
                                          {"manager": "kube-controller-manager",
                                           "subresource": "status"}]  # fmt: skip
    assert not applier.drifted("u-1", older)

    live["metadata"]["managedFields"] = [{"manager": "kubectl-edit", "operation": "Update"}]
    assert not applier.drifted("u-1", live)  # another manager, but nothing of ours changed
    edited = copy.deepcopy(live)
    edited["spec"]["ports"][0]["port"] = 9999
    assert applier.drifted("u-1", edited)
    added = copy.deepcopy(live)
    added["spec"]["ports"].append({"name": "debug", "port": 5000})
    assert applier.drifted("u-1", added)
    relabelled = copy.deepcopy(live)
    relabelled["metadata"]["labels"] = {"a": "c"}
    assert applier.drifted("u-1", relabelled)
    # A child this process never applied, or of another owner, is not judged.
    assert not applier.drifted("u-2", edited)


@pytest.mark.parametrize("refuse", [False, True], ids=["kept-beside", "apply-refused"])
def test_list_items_left_by_another_manager_are_replaced(refuse: bool) -> None:
    kube = RecordingKube(extra_port=True, refuse=refuse)
    applier = Applier(kube)  # type: ignore[arg-type]
    result = applier.apply_children(OWNER, [copy.deepcopy(SERVICE)], set())
    assert len(kube.merge_patches) == 1
    assert kube.merge_patches[0]["spec"] == SERVICE["spec"]
    ports = result.live("Service")["iris-predictor"]["spec"]["ports"]
    assert ports == [{"name": "http", "port": 80, "protocol": "TCP"}]


def test_a_refused_new_child_is_reported_not_patched() -> None:
    class Refusing(RecordingKube):
        def apply(self, obj: dict[str, Any], field_manager: str, force: bool = True) -> Any:
            raise ApiException(status=422, reason="Invalid")

        def merge_patch(self, *_: Any) -> dict[str, Any]:
            raise ApiException(status=404, reason="NotFound")

    applier = Applier(Refusing())  # type: ignore[arg-type]
    with pytest.raises(ReconcileError, match="refused Service iris-predictor"):
        applier.apply_children(OWNER, [copy.deepcopy(SERVICE)], set())
