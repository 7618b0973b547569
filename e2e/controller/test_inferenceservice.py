"""The controller against a real API server: samples applied unchanged become Deployments,
Services, autoscalers and HTTPRoutes with owner references; status follows the pods (kwok
makes them Ready); drift is put back; stop, canary, runtime and config changes; webhooks
reject with field names; deletion garbage-collects."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kss_e2e import Cluster, Kube, answers, free_ports, make_tls, wait_for
from kubernetes.client.exceptions import ApiException

# Each test applies what it needs (server-side apply is idempotent), so xdist may spread
# them over workers: each worker runs its own controller for its own namespace.
pytestmark = pytest.mark.control_plane

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "docs" / "samples" / "inferenceservice"
RUNTIMES = REPO / "controller" / "src" / "kserve_stack_controller" / "builtin_runtimes"
CONTROLLER = Path(sys.executable).parent / "kserve-stack-controller"
ISVC = ("serving.kserve.io/v1beta1", "InferenceService")


def _sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((SAMPLES / name).read_text())
    return doc


class Controller:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, webhook_name: str) -> None:
        self.process = process
        self.log = log
        self.webhook_name = webhook_name

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def controller(kube: Kube, cluster: Cluster, namespace: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:  # fmt: skip
    if not cluster.api_server_is_local:
        pytest.skip(f"the {cluster.backend} API server cannot call webhooks on 127.0.0.1")
    for path in sorted(RUNTIMES.glob("*.yaml")):  # the built-in ClusterServingRuntimes
        kube.apply(path)
    work = tmp_path_factory.mktemp("controller")
    tls = make_tls(work / "tls")
    certs = work / "certs"
    certs.mkdir()
    shutil.copy(tls.cert, certs / "tls.crt")
    shutil.copy(tls.key, certs / "tls.key")
    shutil.copy(tls.ca_cert, certs / "ca.crt")
    webhook_port, health_port = free_ports(2)
    webhook_name = f"kss-{namespace}"
    log = work / "controller.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CONTROLLER), "--namespace", namespace, "--config-namespace", namespace,
             "--kubeconfig", str(cluster.kubeconfig), "--webhook-cert-dir", str(certs),
             "--webhook-host", "127.0.0.1", "--webhook-port", str(webhook_port),
             "--webhook-url", f"https://127.0.0.1:{webhook_port}",
             "--webhook-config-name", webhook_name, "--health-host", "127.0.0.1",
             "--health-port", str(health_port), "--log-level", "INFO"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip

    url = f"http://127.0.0.1:{health_port}/readyz"
    wait_for(
        "the controller to watch", lambda: answers(process, log, url, "controller"), timeout=60
    )
    handle = Controller(process, log, webhook_name)
    try:
        yield handle
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        for delete in (kube.admission.delete_mutating_webhook_configuration,
                       kube.admission.delete_validating_webhook_configuration):  # fmt: skip
            with contextlib.suppress(ApiException):
                delete(webhook_name)
        if os.environ.get("KSS_E2E_SHOW_CONTROLLER_LOG") == "1":
            print(log.read_text())


def _isvc(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.resource(*ISVC).get(name=name, namespace=namespace).to_dict()  # type: ignore[no-any-return]


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] == ctype:
            return condition  # type: ignore[no-any-return]
    return {}


def _wait_ready(kube: Kube, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = _isvc(kube, namespace, name)
        return obj if _condition(obj, "Ready").get("status") == "True" else None

    return wait_for(f"InferenceService {name} Ready", probe, timeout=timeout)


def _get(kube: Kube, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any]:
    return kube.resource(api_version, kind).get(name=name, namespace=namespace).to_dict()  # type: ignore[no-any-return]


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r.get("controller") for r in refs)


def _gone(kube: Kube, api_version: str, kind: str, name: str, namespace: str) -> bool:
    try:
        _get(kube, api_version, kind, name, namespace)
    except ApiException as err:
        return err.status == 404
    return False


def test_samples_become_owned_children_and_ready(kube: Kube, namespace: str,
                                                 controller: Controller) -> None:  # fmt: skip
    for sample in ("sklearn-iris.yaml", "xgboost-v2.yaml", "lightgbm-keda.yaml",
                   "sklearn-legacy-framework.yaml", "custom-container.yaml"):  # fmt: skip
        kube.apply(SAMPLES / sample, namespace=namespace)
    expected = {
        "sklearn-iris": ("HorizontalPodAutoscaler", "autoscaling/v2"),
        "xgboost-v2": ("HorizontalPodAutoscaler", "autoscaling/v2"),
        "lightgbm-iris": ("ScaledObject", "keda.sh/v1alpha1"),
        "sklearn-legacy": ("HorizontalPodAutoscaler", "autoscaling/v2"),
        "custom-model": ("HorizontalPodAutoscaler", "autoscaling/v2"),
    }
    for name, (scaler_kind, scaler_api) in expected.items():
        owner = _wait_ready(kube, namespace, name) if name != "lightgbm-iris" else None
        owner = owner or _isvc(kube, namespace, name)
        children = [
            _get(kube, "apps/v1", "Deployment", f"{name}-predictor", namespace),
            _get(kube, "v1", "Service", f"{name}-predictor", namespace),
            _get(kube, scaler_api, scaler_kind, f"{name}-predictor", namespace),
            _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", name, namespace),
        ]
        for child in children:
            assert _owned_by(child, owner), child["metadata"]
    iris = _isvc(kube, namespace, "sklearn-iris")
    status = iris["status"]
    assert status["url"] == f"http://sklearn-iris-{namespace}.example.com"
    assert status["address"]["url"] == (
        f"http://sklearn-iris-predictor.{namespace}.svc.cluster.local"
    )
    assert status["clusterServingRuntimeName"] == "kserve-sklearnserver"
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    for ctype in ("PredictorReady", "IngressReady", "Ready"):
        assert _condition(iris, ctype)["status"] == "True"
    # The legacy block was defaulted by the mutating webhook into model.modelFormat.
    legacy = _isvc(kube, namespace, "sklearn-legacy")
    assert legacy["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}
    assert "sklearn" not in legacy["spec"]["predictor"]
    keda = _get(kube, "keda.sh/v1alpha1", "ScaledObject", "lightgbm-iris-predictor", namespace)
    assert keda["spec"]["minReplicaCount"] == 0
    # Scale from zero: woken by the activator's held requests, routed through the activator.
    assert keda["spec"]["triggers"][-1]["name"] == "activator-pending-requests"
    route = _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", "lightgbm-iris", namespace)
    ref = route["spec"]["rules"][0]["backendRefs"][0]
    assert (ref["name"], ref["namespace"]) == ("kserve-stack-activator", "kserve")
    assert ref["filters"][0]["requestHeaderModifier"]["set"][0]["value"] == (
        f"{namespace}/lightgbm-iris-predictor"
    )
    dep = _get(kube, "apps/v1", "Deployment", "sklearn-iris-predictor", namespace)
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"] == ["gs://kfserving-examples/models/sklearn/1.0/model", "/mnt/models"]
    events = kube.core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=sklearn-iris"
    ).items
    assert any(e.reason == "Reconciled" and "kserve-sklearnserver" in e.message for e in events)


def test_hand_edited_and_deleted_children_are_put_back(kube: Kube, namespace: str,
                                                       controller: Controller) -> None:  # fmt: skip
    kube.apply(SAMPLES / "sklearn-iris.yaml", namespace=namespace)
    _wait_ready(kube, namespace, "sklearn-iris")
    name = "sklearn-iris-predictor"
    kube.apps.patch_namespaced_deployment(name, namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": "kserve-container", "image": "evil/image:1"}]}}}})  # fmt: skip

    def image_back() -> bool:
        dep = kube.apps.read_namespaced_deployment(name, namespace)
        return bool(dep.spec.template.spec.containers[0].image == "kserve-stack/runtimes:0.1.0")

    wait_for("the hand-edited image to be put back", image_back, timeout=30)
    kube.apps.delete_namespaced_deployment(name, namespace)
    wait_for(
        "the deleted Deployment to come back",
        lambda: kube.apps.read_namespaced_deployment(name, namespace),
        timeout=30,
    )
    _wait_ready(kube, namespace, "sklearn-iris")
    # Other children come back too, without waiting for an update of the InferenceService.
    old_service = kube.core.read_namespaced_service(name, namespace).metadata.uid
    kube.core.delete_namespaced_service(name, namespace)
    wait_for(
        "the deleted Service to come back",
        lambda: kube.core.read_namespaced_service(name, namespace).metadata.uid != old_service,
        timeout=30,
    )

    # A hand edit of a Service or an HTTPRoute is put back too, the isvc untouched.
    def service_port() -> int:
        return int(kube.core.read_namespaced_service(name, namespace).spec.ports[0].port)

    wanted_port = service_port()
    # A JSON patch: the edited item is a new list entry owned by another field manager.
    kube.core.patch_namespaced_service(
        name, namespace, [{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}]
    )
    wait_for("the hand-edited Service port to be put back",
             lambda: service_port() == wanted_port, timeout=30)  # fmt: skip
    routes = kube.resource("gateway.networking.k8s.io/v1", "HTTPRoute")
    wanted_hosts = routes.get(name="sklearn-iris", namespace=namespace).spec.hostnames
    routes.patch(name="sklearn-iris", namespace=namespace,
                 content_type="application/merge-patch+json",
                 body={"spec": {"hostnames": ["hijacked.example.com"]}})  # fmt: skip
    wait_for(
        "the hand-edited HTTPRoute hostnames to be put back",
        lambda: routes.get(name="sklearn-iris", namespace=namespace).spec.hostnames == wanted_hosts,
        timeout=30,
    )
    old_route = routes.get(name="sklearn-iris", namespace=namespace).metadata.uid
    routes.delete(name="sklearn-iris", namespace=namespace)
    wait_for(
        "the deleted HTTPRoute to come back",
        lambda: routes.get(name="sklearn-iris", namespace=namespace).metadata.uid != old_route,
        timeout=30,
    )


def test_stop_annotation_scales_to_zero_and_resumes(kube: Kube, namespace: str,
                                                    controller: Controller) -> None:  # fmt: skip
    kube.apply(SAMPLES / "xgboost-v2.yaml", namespace=namespace)
    _wait_ready(kube, namespace, "xgboost-v2")
    patch = {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    kube.resource(*ISVC).patch(name="xgboost-v2", namespace=namespace, body=patch,
                               content_type="application/merge-patch+json")  # fmt: skip

    def stopped() -> bool:
        obj = _isvc(kube, namespace, "xgboost-v2")
        dep = kube.apps.read_namespaced_deployment("xgboost-v2-predictor", namespace)
        return (dep.spec.replicas == 0 and _condition(obj, "Stopped").get("status") == "True"
                and _condition(obj, "Ready").get("reason") == "Stopped")  # fmt: skip

    wait_for("xgboost-v2 to stop", stopped, timeout=30)
    assert _gone(kube, "autoscaling/v2", "HorizontalPodAutoscaler", "xgboost-v2-predictor",
                 namespace)  # fmt: skip
    patch = {"metadata": {"annotations": {"serving.kserve.io/stop": None}}}
    kube.resource(*ISVC).patch(name="xgboost-v2", namespace=namespace, body=patch,
                               content_type="application/merge-patch+json")  # fmt: skip
    obj = _wait_ready(kube, namespace, "xgboost-v2")
    assert not _condition(obj, "Stopped")
    assert (
        kube.apps.read_namespaced_deployment("xgboost-v2-predictor", namespace).spec.replicas == 1
    )
    _get(kube, "autoscaling/v2", "HorizontalPodAutoscaler", "xgboost-v2-predictor", namespace)


def test_canary_splits_then_promotes(kube: Kube, namespace: str,
                                     controller: Controller) -> None:  # fmt: skip
    kube.apply(SAMPLES / "canary.yaml", namespace=namespace)  # first revision: all traffic
    first = _wait_ready(kube, namespace, "sklearn-canary")
    old_rev = first["status"]["components"]["predictor"]["latestReadyRevision"]
    doc = _sample("canary.yaml")
    doc["spec"]["predictor"]["model"]["storageUri"] = "gs://kfserving-examples/models/sklearn/3.0"
    kube.apply(doc, namespace=namespace)

    def split() -> list[tuple[str, int]] | None:
        route = _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", "sklearn-canary",
                     namespace)  # fmt: skip
        refs = route["spec"]["rules"][0]["backendRefs"]
        pairs = [(r["name"], r["weight"]) for r in refs]
        return pairs if len(pairs) == 2 else None

    pairs = wait_for("the canary split", split, timeout=30)
    assert pairs == [("sklearn-canary-predictor", 90), ("sklearn-canary-predictor-canary", 10)]
    stable = kube.apps.read_namespaced_deployment("sklearn-canary-predictor", namespace)
    assert stable.metadata.annotations["serving.kserve.io/revision"] == old_rev
    canary = kube.apps.read_namespaced_deployment("sklearn-canary-predictor-canary", namespace)
    assert canary.spec.template.spec.init_containers[0].args[0].endswith("/3.0")

    def split_status() -> dict[str, Any] | None:
        obj = _isvc(kube, namespace, "sklearn-canary")
        traffic = obj["status"]["components"]["predictor"]["traffic"]
        ready = _condition(obj, "Ready").get("status") == "True"
        return obj if ready and len(traffic) == 2 else None

    obj = wait_for("status to show the split", split_status, timeout=30)
    traffic = obj["status"]["components"]["predictor"]["traffic"]
    assert [(t["revisionName"] == old_rev, t["percent"]) for t in traffic] == [
        (True, 90),
        (False, 10),
    ]
    # Promote: drop canaryTrafficPercent; the stable Deployment takes the new revision.
    del doc["spec"]["predictor"]["canaryTrafficPercent"]
    kube.resource(*ISVC).replace(body={**copy.deepcopy(doc), "metadata": {
        **doc["metadata"], "resourceVersion": obj["metadata"]["resourceVersion"]}},
        namespace=namespace)  # fmt: skip
    wait_for("the canary Deployment to be pruned",
             lambda: _gone(kube, "apps/v1", "Deployment", "sklearn-canary-predictor-canary",
                           namespace), timeout=30)  # fmt: skip
    route = _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", "sklearn-canary", namespace)
    assert [(r["name"], r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]] == [
        ("sklearn-canary-predictor", 100)
    ]
    dep = kube.apps.read_namespaced_deployment("sklearn-canary-predictor", namespace)
    assert dep.spec.template.spec.init_containers[0].args[0].endswith("/3.0")


def test_webhook_rejects_with_field_names(kube: Kube, namespace: str,
                                          controller: Controller) -> None:  # fmt: skip
    bad = _sample("sklearn-iris.yaml")
    bad["metadata"] = {"name": "serverless", "annotations": {
        "serving.kserve.io/deploymentMode": "Serverless"}}  # fmt: skip
    with pytest.raises(ApiException) as raised:
        kube.resource(*ISVC).create(body=bad, namespace=namespace)
    assert raised.value.status == 422
    assert "metadata.annotations[serving.kserve.io/deploymentMode]" in raised.value.body
    assert "Standard" in raised.value.body
    zero = _sample("sklearn-iris.yaml")
    zero["metadata"] = {"name": "zero", "annotations": {"serving.kserve.io/autoscalerClass": "hpa"}}
    zero["spec"]["predictor"]["minReplicas"] = 0
    with pytest.raises(ApiException) as raised:
        kube.resource(*ISVC).create(body=zero, namespace=namespace)
    assert "spec.predictor.minReplicas" in raised.value.body
    assert "validator.serving.kserve.io" in raised.value.body


def test_missing_runtime_then_runtime_appears(kube: Kube, namespace: str,
                                              controller: Controller) -> None:  # fmt: skip
    onnx = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "onnx-model"},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"},
                                             "storageUri": "s3://m/onnx"}}}}  # fmt: skip
    kube.apply(onnx, namespace=namespace)

    def no_runtime() -> bool:
        ready = _condition(_isvc(kube, namespace, "onnx-model"), "Ready")
        return ready.get("reason") == "NoSupportingRuntime"

    wait_for("reason NoSupportingRuntime", no_runtime, timeout=30)
    kube.apply({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
                "metadata": {"name": "onnx-runtime"},
                "spec": {"supportedModelFormats": [{"name": "onnx", "autoSelect": True}],
                         "containers": [{"name": "kserve-container", "image": "onnx:1",
                                         "args": ["--model_name={{.Name}}"]}]}},
               namespace=namespace)  # fmt: skip
    obj = _wait_ready(kube, namespace, "onnx-model")
    assert obj["status"]["servingRuntimeName"] == "onnx-runtime"
    dep = kube.apps.read_namespaced_deployment("onnx-model-predictor", namespace)
    assert dep.spec.template.spec.containers[0].args == ["--model_name=onnx-model"]


def test_config_change_applies_without_restart(kube: Kube, namespace: str,
                                               controller: Controller) -> None:  # fmt: skip
    kube.apply(SAMPLES / "sklearn-iris.yaml", namespace=namespace)
    _wait_ready(kube, namespace, "sklearn-iris")
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "inferenceservice-config"},
                "data": {"ingress": '{"ingressDomain": "models.e2e.test"}'}},
               namespace=namespace)  # fmt: skip

    def moved() -> bool:
        route = _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", "sklearn-iris", namespace)
        return bool(route["spec"]["hostnames"] == [f"sklearn-iris-{namespace}.models.e2e.test"])

    wait_for("the HTTPRoute host to follow the ConfigMap", moved, timeout=30)
    url = f"http://sklearn-iris-{namespace}.models.e2e.test"
    wait_for("status.url to follow", lambda: _isvc(kube, namespace, "sklearn-iris")["status"][
        "url"] == url, timeout=30)  # fmt: skip
    assert controller.process.poll() is None
    # Back to the defaults: deleting the ConfigMap restores them, again without a restart.
    kube.core.delete_namespaced_config_map("inferenceservice-config", namespace)
    url = f"http://sklearn-iris-{namespace}.example.com"
    wait_for("status.url back to the default domain", lambda: _isvc(
        kube, namespace, "sklearn-iris")["status"]["url"] == url, timeout=30)  # fmt: skip


def test_activator_reference_grant_follows_the_config(kube: Kube, namespace: str,
                                                      controller: Controller) -> None:  # fmt: skip
    """A component at zero is routed to the activator's Service in another namespace: the
    controller writes the ReferenceGrant there that Gateway API asks for; where that
    namespace does not exist, a Warning event says so and the service still gets Ready."""
    grants = kube.resource("gateway.networking.k8s.io/v1beta1", "ReferenceGrant")
    absent = f"{namespace}-nowhere"
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "inferenceservice-config"},
                "data": {"activator": json.dumps({"namespace": absent})}},
               namespace=namespace)  # fmt: skip
    try:
        kube.apply(SAMPLES / "lightgbm-keda.yaml", namespace=namespace)
        _wait_ready(kube, namespace, "lightgbm-iris")

        def warned() -> bool:
            events = kube.core.list_namespaced_event(
                namespace, field_selector="involvedObject.name=lightgbm-iris"
            ).items
            return any(e.reason == "SharedObjectFailed" and absent in e.message for e in events)

        wait_for("a Warning event about the missing ReferenceGrant", warned, timeout=30)
        activator_ns = f"{namespace}-act"
        kube.create_namespace(activator_ns)
        try:
            kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "inferenceservice-config"},
                        "data": {"activator": json.dumps({"namespace": activator_ns})}},
                       namespace=namespace)  # fmt: skip
            name = f"kserve-stack-activator-from-{namespace}"
            grant = wait_for(
                "the activator's ReferenceGrant",
                lambda: grants.get(name=name, namespace=activator_ns).to_dict(),
                timeout=30,
            )
            assert grant["spec"]["from"] == [
                {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}
            ]
            assert grant["spec"]["to"] == [{"group": "", "kind": "Service",
                                            "name": "kserve-stack-activator"}]  # fmt: skip
            route = _get(kube, "gateway.networking.k8s.io/v1", "HTTPRoute", "lightgbm-iris",
                         namespace)  # fmt: skip
            ref = route["spec"]["rules"][0]["backendRefs"][0]
            assert (ref["name"], ref["namespace"]) == ("kserve-stack-activator", activator_ns)
        finally:
            kube.delete_namespace(activator_ns)
    finally:
        kube.core.delete_namespaced_config_map("inferenceservice-config", namespace)
        kube.resource(*ISVC).delete(name="lightgbm-iris", namespace=namespace)


def test_deletion_garbage_collects(kube: Kube, namespace: str, controller: Controller) -> None:
    kube.apply(SAMPLES / "sklearn-legacy-framework.yaml", namespace=namespace)
    _wait_ready(kube, namespace, "sklearn-legacy")
    kube.resource(*ISVC).delete(name="sklearn-legacy", namespace=namespace)
    for api_version, kind, name in (
        ("apps/v1", "Deployment", "sklearn-legacy-predictor"),
        ("v1", "Service", "sklearn-legacy-predictor"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "sklearn-legacy-predictor"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "sklearn-legacy"),
    ):
        wait_for(f"{kind} {name} to be garbage-collected",
                 lambda a=api_version, k=kind, n=name: _gone(kube, a, k, n, namespace),
                 timeout=60)  # fmt: skip
    assert "Traceback" not in controller.log_text()
