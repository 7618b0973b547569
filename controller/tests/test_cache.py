"""The watch caches: versions only move forward, a deletion is not undone by a late event,
reads are answered by kind, namespace and label; the cached client writes through; child
events that arrive during a reconcile fold into one more reconcile."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest
import urllib3
from kserve_stack_controller.cache import (
    CACHED_KINDS,
    PRIME_TRIES,
    CachedKube,
    ObjectCache,
    equality_selector,
    prime,
)
from kserve_stack_controller.constants import LABEL_ISVC
from kserve_stack_controller.kube import Kube
from kserve_stack_controller.reconcile import Outcome
from kserve_stack_controller.state import Operator, Settings
from kubernetes.client.exceptions import ApiException


def obj(name: str, version: str, isvc: str = "iris", ns: str = "ns", **labels: str) -> Any:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "resourceVersion": version,
            "labels": {LABEL_ISVC: isvc, **labels},
            "managedFields": [{"manager": "kserve-stack-controller"}],
        },
        "spec": {"replicas": 1},
    }


def test_versions_only_move_forward() -> None:
    cache = ObjectCache()
    assert cache.offer("Deployment", obj("a", "10"))
    assert not cache.offer("Deployment", obj("a", "9"))  # a late event
    assert not cache.offer("Deployment", obj("a", "10"))
    newer = obj("a", "11")
    newer["spec"]["replicas"] = 3
    assert cache.offer("Deployment", newer)
    got = cache.get("Deployment", "ns", "a")
    assert got is not None
    assert got["spec"]["replicas"] == 3
    assert "managedFields" not in got["metadata"]
    got["spec"]["replicas"] = 99  # a reader's copy
    assert cache.get("Deployment", "ns", "a")["spec"]["replicas"] == 3  # type: ignore[index]


def test_a_deletion_is_not_undone_by_an_older_event_but_a_new_object_is_kept() -> None:
    cache = ObjectCache()
    cache.offer("Deployment", obj("a", "10"))
    cache.remove("Deployment", obj("a", "12"))
    assert cache.get("Deployment", "ns", "a") is None
    assert not cache.offer("Deployment", obj("a", "11"))  # queued before the deletion
    assert cache.select("Deployment", "ns", "iris", {}) == []
    assert cache.offer("Deployment", obj("a", "13"))  # created again
    assert [d["metadata"]["name"] for d in cache.select("Deployment", "ns", "iris", {})] == ["a"]
    # Our own delete knows no version: the last known one guards against older events.
    cache.remove("Deployment", {"metadata": {"namespace": "ns", "name": "a"}})
    assert not cache.offer("Deployment", obj("a", "13"))
    assert cache.offer("Deployment", obj("a", "14"))


def test_select_by_owner_label_namespace_and_other_labels() -> None:
    cache = ObjectCache()
    cache.offer("Deployment", obj("b", "1", component="transformer"))
    cache.offer("Deployment", obj("a", "2", component="predictor"))
    cache.offer("Deployment", obj("c", "3", isvc="other"))
    cache.offer("Deployment", obj("d", "4", ns="elsewhere"))
    cache.offer("Service", obj("a", "5"))

    def names(found: list[dict[str, Any]]) -> list[str]:
        return [o["metadata"]["name"] for o in found]

    assert names(cache.select("Deployment", "ns", "iris", {})) == ["a", "b"]
    assert names(cache.select("Deployment", "ns", "iris", {"component": "transformer"})) == ["b"]
    assert names(cache.select("Deployment", "ns", "other", {})) == ["c"]
    # The owner label changed: the object moves to its new owner's group.
    cache.offer("Deployment", obj("b", "6", isvc="other"))
    assert names(cache.select("Deployment", "ns", "iris", {})) == ["a"]
    assert names(cache.select("Deployment", "ns", "other", {})) == ["b", "c"]
    # Every namespace, by namespace and name.
    assert names(cache.select("Deployment", None, None, {})) == ["d", "a", "b", "c"]


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        (None, {}),
        ("a=b", {"a": "b"}),
        ("a==b, c=d", {"a": "b", "c": "d"}),
        ("a!=b", None),
        ("a in (b)", None),
        ("a", None),
        ("a=b,!c", None),
    ],
)
def test_equality_selector(selector: str | None, parsed: dict[str, str] | None) -> None:
    assert equality_selector(selector) == parsed


class RecordingKube(Kube):
    """The API server's side of a ``Kube``: records requests, answers writes with the body
    and a new resourceVersion, lists with one object."""

    def __init__(self) -> None:  # no API client: nothing here reaches a server
        self.api_client = None  # type: ignore[assignment]
        self.requests: list[tuple[str, str]] = []
        self.version = 100

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        self.requests.append((method, path))
        self.version += 1
        if method == "get":
            return {"items": [obj("from-api", str(self.version))]}
        if method == "delete":
            return {}
        answer = copy.deepcopy(body)
        if path.endswith("/status"):
            answer = {**isvc_body(str(self.version)), "status": body["status"]}
        answer["metadata"]["resourceVersion"] = str(self.version)
        return answer


def isvc_body(version: str, uid: str = "u-1") -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": "ns", "uid": uid, "resourceVersion": version},
        "spec": {},
    }


def test_cached_reads_in_scope_and_writes_through() -> None:
    inner = RecordingKube()
    cache = ObjectCache()
    cache.primed.update(CACHED_KINDS)
    kube = CachedKube(inner, cache, lambda ns: ns == "ns")
    live = kube.apply(obj("iris-predictor", "0"), "me")
    assert inner.requests == [("patch", "/apis/apps/v1/namespaces/ns/deployments/iris-predictor")]
    assert kube.list("Deployment", "ns", f"{LABEL_ISVC}=iris") == [
        {**live, "metadata": {k: v for k, v in live["metadata"].items() if k != "managedFields"}}
    ]
    assert kube.get("Deployment", "iris-predictor", "ns") is not None
    assert kube.get("InferenceService", "iris", "ns") is None
    assert len(inner.requests) == 1  # all three from the cache
    # Out of scope, or a selector the cache cannot answer: the API server.
    assert [d["metadata"]["name"] for d in kube.list("Deployment", "other", "x=y")] == ["from-api"]
    kube.list("Deployment", "ns", "x!=y")
    kube.list("Deployment", "ns", "component=predictor")  # no owner label: not indexed
    kube.list("ConfigMap", "ns")
    cache.primed.discard("Service")  # not listed at start (its CRD was absent, say)
    kube.get("Service", "iris-predictor", "ns")
    assert [m for m, _ in inner.requests[1:]] == ["get"] * 5
    kube.patch_status("InferenceService", "iris", "ns", {"observedGeneration": 1})
    assert kube.get("InferenceService", "iris", "ns")["status"] == {"observedGeneration": 1}  # type: ignore[index]
    assert kube.delete("Deployment", "iris-predictor", "ns")
    assert kube.list("Deployment", "ns", f"{LABEL_ISVC}=iris") == []


def test_child_events_during_a_reconcile_fold_into_one_more() -> None:
    operator = Operator(RecordingKube(), Settings(namespaces=["ns"]))
    operator.cache.primed.update(CACHED_KINDS)
    calls: list[tuple[str, bool]] = []
    superseded_at_end: list[bool] = []

    def reconcile(body: Any, quick: bool = False, superseded: Any = None) -> Outcome:
        calls.append((body["metadata"]["resourceVersion"], quick))
        assert not superseded()
        if len(calls) == 1:
            # Children's events while the kopf handler's reconcile runs: they return at
            # once (they do not wait for the object's lock) and ask for one more.
            operator.cache.offer("InferenceService", isvc_body("8"))
            assert operator.refresh(isvc_body("7"), quick=True) is None
            assert operator.refresh(isvc_body("7"), quick=True) is None
        if len(calls) == 2:
            operator.refresh(isvc_body("8"), quick=False)  # a deleted child: a full one
        # The status of a reconcile that another one follows at once is left to that one.
        superseded_at_end.append(superseded())
        return Outcome(status={})

    operator.reconciler.reconcile = reconcile  # type: ignore[method-assign]
    operator.reconcile(isvc_body("5"))
    # The kopf handler's, then one quick one and one full one, of the latest body cached.
    assert calls == [("5", False), ("8", True), ("8", False)]
    assert superseded_at_end == [True, True, False]
    # Nothing running: a refresh runs in a refresh thread, of the object as cached.
    operator.cache.offer("InferenceService", isvc_body("9"))
    done = operator.refresh(isvc_body("9"), quick=True)
    assert done is not None
    done.result(timeout=10)
    assert calls[-1] == ("9", True)

    # The object is gone from the cache (deleted): a pending refresh is dropped.
    calls.clear()

    def deleting(body: Any, quick: bool = False, superseded: Any = None) -> Outcome:
        calls.append((body["metadata"]["resourceVersion"], quick))
        operator.refresh(isvc_body("10"), quick=True)
        operator.cache.remove("InferenceService", isvc_body("11"))
        return Outcome(status={})

    operator.reconciler.reconcile = deleting  # type: ignore[method-assign]
    operator.cache.offer("InferenceService", isvc_body("10"))
    done = operator.refresh(isvc_body("10"), quick=True)
    assert done is not None
    done.result(timeout=10)
    assert calls == [("10", True)]


class ListingKube(RecordingKube):
    """Answers listings in pages of one object; ScaledObjects are not served (no CRD)."""

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        self.requests.append((method, path + f"?continue={params.get('_continue')}"))
        if "scaledobjects" in path:
            raise ApiException(status=404, reason="Not Found")
        if params.get("_continue") is None:
            return {"metadata": {"continue": "2"}, "items": [obj("first", "1")]}
        return {"metadata": {}, "items": [obj("second", "2")]}


def test_prime_lists_every_page_of_each_kind_and_leaves_out_kinds_not_served() -> None:
    inner = ListingKube()
    cache = ObjectCache()
    prime(inner, cache, ["ns"])
    assert cache.primed == set(CACHED_KINDS) - {"ScaledObject"}
    assert ("get", "/apis/apps/v1/namespaces/ns/deployments?continue=2") in inner.requests
    names = [d["metadata"]["name"] for d in cache.select("Deployment", "ns", "iris", {})]
    assert names == ["first", "second"]
    # A kind not primed is read from the API server.
    kube = CachedKube(inner, cache, lambda ns: True)
    assert kube.list("ScaledObject", "ns", f"{LABEL_ISVC}=iris") == []  # Kube.list: 404
    assert "scaledobjects" in inner.requests[-1][1]


def test_a_failing_reconcile_leaves_no_run_behind() -> None:
    operator = Operator(RecordingKube(), Settings(namespaces=["ns"]))
    operator.cache.primed.update(CACHED_KINDS)
    calls: list[str] = []

    def failing(body: Any, quick: bool = False, superseded: Any = None) -> Outcome:
        calls.append(body["metadata"]["resourceVersion"])
        if len(calls) == 1:
            operator.refresh(isvc_body("2"), quick=True)  # folds into this one
        raise RuntimeError("a bug")

    operator.reconciler.reconcile = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        operator.reconcile(isvc_body("1"))
    assert calls == ["1", "1"]  # the refresh that folded in ran (and failed too)
    # The next refresh is not swallowed by a run left behind; its failure is logged.
    done = operator.refresh(isvc_body("1"), quick=True)
    assert done is not None
    done.result(timeout=10)
    assert calls == ["1", "1", "1"]


class FlakyKube(Kube):
    """Answers each listing with the given failures first (an int: that HTTP status, None:
    no answer), then with two pages."""

    def __init__(self, failures: list[int | None]) -> None:
        self.api_client = None  # type: ignore[assignment]
        self.failures = failures
        self.requests: list[str | None] = []

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        self.requests.append(params.get("_continue"))
        if "deployments" in path and self.failures and params.get("_continue") == "2":
            failure = self.failures.pop(0)
            if failure is None:
                raise urllib3.exceptions.ProtocolError("connection reset")
            raise ApiException(status=failure, reason="Failure")
        if params.get("_continue") is None:
            return {"metadata": {"continue": "2"}, "items": [obj("first", "1")]}
        return {"metadata": {}, "items": [obj("second", "2")]}


@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([410], id="continue-token-expired"),
        pytest.param([503, 429], id="busy"),
        pytest.param([None], id="no-answer"),
    ],
)
def test_prime_lists_again_after_a_passing_failure(failures: list[int | None]) -> None:
    kube, cache = FlakyKube(failures), ObjectCache()
    prime(kube, cache, ["ns"], backoff=0.001)
    assert not kube.failures
    assert "Deployment" in cache.primed
    names = [d["metadata"]["name"] for d in cache.select("Deployment", "ns", "iris", {})]
    assert names == ["first", "second"]


@pytest.mark.parametrize(
    ("failures", "status"),
    [
        pytest.param([400], 400, id="bad-request-at-once"),
        pytest.param([500] * PRIME_TRIES, 500, id="gives-up"),
    ],
)
def test_prime_raises_what_retrying_cannot_mend(failures: list[int | None], status: int) -> None:
    kube = FlakyKube(failures)
    with pytest.raises(ApiException) as raised:
        prime(kube, ObjectCache(), ["ns"], backoff=0.001)
    assert raised.value.status == status


def test_shared_objects_that_failed_are_written_again_later() -> None:
    operator = Operator(RecordingKube(), Settings(namespaces=["ns"]))
    operator.cache.primed.update(CACHED_KINDS)
    operator.shared_retry = 0.05
    calls: list[bool] = []
    again = threading.Event()

    def reconcile(body: Any, quick: bool = False, superseded: Any = None) -> Outcome:
        calls.append(quick)
        if len(calls) > 2:
            again.set()
            return Outcome(status={})  # written this time: no further retry
        return Outcome(status={}, warnings=["ReferenceGrant x: forbidden"])

    operator.reconciler.reconcile = reconcile  # type: ignore[method-assign]
    operator.reconcile(isvc_body("5"))
    operator.reconcile(isvc_body("5"))  # a second failure while one retry is pending
    assert again.wait(timeout=10), "no retry came"
    time.sleep(0.3)
    assert calls == [False, False, False]  # the two reconciles, then one full retry


def test_reconcile_all_stops_quietly_while_the_api_server_is_away() -> None:
    operator = Operator(RecordingKube(), Settings(namespaces=["ns"]))
    operator.cache.primed.update(CACHED_KINDS)
    for uid in ("u-1", "u-2"):
        body = isvc_body("5", uid)
        body["metadata"]["name"] = uid
        operator.cache.offer("InferenceService", body)
    calls: list[str] = []

    def unreachable(body: Any, quick: bool = False, superseded: Any = None) -> Outcome:
        calls.append(body["metadata"]["uid"])
        raise urllib3.exceptions.MaxRetryError(None, "/", "connection refused")  # type: ignore[arg-type]

    operator.reconciler.reconcile = unreachable  # type: ignore[method-assign]
    assert operator.reconcile_all("ns", "a runtime changed") == 0  # no exception escapes
    assert len(calls) == 1  # the others are left to the watches' next events
