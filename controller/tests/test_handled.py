"""The in-memory store of what kopf last handled, and the events a reconcile writes."""

from __future__ import annotations

from typing import Any

import kopf
import pytest
from kserve_stack_controller.handled import MemoryDiffBaseStorage
from kserve_stack_controller.reconcile import _joined

ANNOTATIONS = "metadata__annotations__"


def body(**changes: Any) -> kopf.Body:
    obj: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 1,
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"team": "a"},
            "annotations": {
                "serving.kserve.io/autoscalerClass": "hpa",
                "kopf.zalando.org/last-handled-configuration": "{}",
                "kopf.zalando.org/reconcile_isvc": "{}",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        },
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
        "status": {"url": "http://x"},
    }
    for path, value in changes.items():
        target = obj
        *parents, leaf = path.split("__")
        for key in parents:
            target = target[key]
        target[leaf] = value
    return kopf.Body(obj)


def test_essence_is_spec_labels_and_user_annotations() -> None:
    essence = MemoryDiffBaseStorage().build(body=body())
    assert essence == {
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
        "metadata": {
            "labels": {"team": "a"},
            "annotations": {"serving.kserve.io/autoscalerClass": "hpa"},
        },
    }


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        pytest.param({"status": {"url": "http://y"}}, False, id="status-write"),
        pytest.param({"metadata__resourceVersion": "8"}, False, id="resource-version"),
        pytest.param({"metadata__managedFields": []}, False, id="managed-fields"),
        pytest.param(
            {"metadata__annotations__kopf.zalando.org/touch-dummy": "1"},
            False,
            id="kopf-annotation",
        ),
        pytest.param(
            {"metadata__annotations__serving.kserve.io/stop": "true"}, True, id="annotation"
        ),
        pytest.param({"metadata__labels": {"team": "b"}}, True, id="label"),
        pytest.param({"spec": {"predictor": {}}}, True, id="spec"),
    ],
)
def test_what_counts_as_a_change(change: dict[str, Any], differs: bool) -> None:
    storage = MemoryDiffBaseStorage()
    handled = body()
    storage.store(body=handled, patch=kopf.Patch(), essence=storage.build(body=handled))
    changed = body(**change)
    assert (storage.fetch(body=changed) != storage.build(body=changed)) is differs


def test_essence_is_a_copy() -> None:
    original = body()
    essence = MemoryDiffBaseStorage().build(body=original)
    original["spec"]["predictor"]["model"]["modelFormat"]["name"] = "xgboost"
    assert essence["spec"]["predictor"]["model"]["modelFormat"]["name"] == "sklearn"


def test_nothing_is_written_onto_the_object_and_forget_drops_it() -> None:
    storage = MemoryDiffBaseStorage()
    handled, patch = body(), kopf.Patch()
    assert storage.fetch(body=handled) is None  # never handled: kopf runs the create handler
    storage.store(body=handled, patch=patch, essence=storage.build(body=handled))
    assert not patch
    assert storage.fetch(body=handled) == storage.build(body=handled)
    storage.forget("u-1")
    assert storage.fetch(body=handled) is None
    assert len(storage) == 0


@pytest.mark.parametrize(
    ("parts", "limit", "expected"),
    [
        pytest.param([], 20, [], id="none"),
        pytest.param(["a", "b", "c"], 20, ["a; b; c"], id="one-message"),
        pytest.param(["aaaa", "bbbb", "cccc"], 10, ["aaaa; bbbb", "cccc"], id="split"),
        pytest.param(["a" * 30, "b"], 10, ["a" * 30, "b"], id="long-part-alone"),
    ],
)
def test_decisions_are_joined_into_few_events(
    parts: list[str], limit: int, expected: list[str]
) -> None:
    assert _joined(parts, limit) == expected
