"""The least-privilege ClusterRole of kustomize/controller is enough: the controller runs
with a ServiceAccount token bound to it (TokenRequest API, no admin credentials) and
reconciles samples to Ready: children created (server-side apply), status written, events
posted, the ConfigMap and runtimes read, an autoscaler pruned on stop, a deleted child put
back; the log shows no refused request."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kss_e2e import Cluster, Kube, wait_for
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from rel_support import ISVC, ControllerProcess, ready

pytestmark = pytest.mark.control_plane

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "kustomize" / "controller" / "rbac.yaml"
SAMPLES = REPO / "docs" / "samples" / "inferenceservice"
SA = "kserve-stack-controller"


@pytest.fixture
def token_kubeconfig(kube: Kube, cluster: Cluster, namespace: str,
                     tmp_path: Path) -> Iterator[Path]:  # fmt: skip
    """A kubeconfig holding a token of a ServiceAccount bound to the kustomize ClusterRole
    (renamed per test, so that it cannot collide with an installed chart's)."""
    docs = {d["kind"]: d for d in yaml.safe_load_all(RBAC.read_text()) if d}
    role = docs["ClusterRole"]
    name = f"kss-e2e-rbac-{namespace}"
    role["metadata"] = {"name": name}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": namespace}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA}}
    kube.apply([role, binding])
    kube.apply(account, namespace=namespace)
    # The Role for the activator's ReferenceGrants, bound in the activator's namespace.
    kube.create_namespace(activator_namespace(namespace))
    named = {(d["kind"], d["metadata"]["name"]): d
             for d in yaml.safe_load_all(RBAC.read_text()) if d}  # fmt: skip
    grant_role = named["Role", "kserve-stack-controller-reference-grants"]
    grant_binding = named["RoleBinding", "kserve-stack-controller-reference-grants"]
    grant_binding["subjects"][0]["namespace"] = namespace
    kube.apply([grant_role, grant_binding], namespace=activator_namespace(namespace))
    try:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        )
        token = kube.core.create_namespaced_service_account_token(SA, namespace, request)
        assert token.status is not None, "TokenRequest answered without a token"
        admin = yaml.safe_load(cluster.kubeconfig.read_text())
        path = tmp_path / "sa.kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": admin["clusters"][:1],
            "users": [{"name": SA, "user": {"token": token.status.token}}],
            "contexts": [{"name": SA, "context": {
                "cluster": admin["clusters"][0]["name"], "user": SA}}],
            "current-context": SA,
        }))  # fmt: skip
        yield path
    finally:
        rbac = client.RbacAuthorizationV1Api(kube.api_client)
        with contextlib.suppress(ApiException):
            rbac.delete_cluster_role_binding(name)
        with contextlib.suppress(ApiException):
            rbac.delete_cluster_role(name)
        kube.delete_namespace(activator_namespace(namespace))


def activator_namespace(namespace: str) -> str:
    return f"{namespace}-act"


def _isvc(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    return kube.resource(*ISVC).get(name=name, namespace=namespace).to_dict()  # type: ignore[no-any-return]


def _exists(kube: Kube, api_version: str, kind: str, name: str, namespace: str) -> bool:
    try:
        kube.resource(api_version, kind).get(name=name, namespace=namespace)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


@pytest.mark.usefixtures("runtimes")
def test_least_privilege_role_is_enough(kube: Kube, namespace: str, token_kubeconfig: Path,
                                        make_controller: Callable[..., ControllerProcess]
                                        ) -> None:  # fmt: skip
    # The token is not an admin's: what the role does not grant is refused.
    restricted = client.CoreV1Api(
        config.new_client_from_config(config_file=str(token_kubeconfig))  # type: ignore[no-untyped-call]
    )
    with pytest.raises(ApiException) as refused:
        restricted.list_namespaced_secret(namespace)
    assert refused.value.status == 403
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "inferenceservice-config"},
                "data": {"activator": json.dumps({"namespace": activator_namespace(namespace)})}},
               namespace=namespace)  # fmt: skip
    controller = make_controller(token_kubeconfig, ("--install-builtin-runtimes",))
    controller.start()
    # It installed the built-in runtimes itself (server-side apply under its own name).
    runtime = kube.resource("serving.kserve.io/v1alpha1", "ClusterServingRuntime").get(
        name="kserve-sklearnserver").to_dict()  # fmt: skip
    managers = {m["manager"] for m in runtime["metadata"]["managedFields"]}
    assert "kserve-stack-controller" in managers, managers
    kube.apply(SAMPLES / "sklearn-iris.yaml", namespace=namespace)
    kube.apply(SAMPLES / "lightgbm-keda.yaml", namespace=namespace)
    wait_for("sklearn-iris Ready", lambda: ready(_isvc(kube, namespace, "sklearn-iris")),
             timeout=90)  # fmt: skip
    for api_version, kind, name in (
        ("apps/v1", "Deployment", "sklearn-iris-predictor"),
        ("v1", "Service", "sklearn-iris-predictor"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "sklearn-iris-predictor"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "sklearn-iris"),
        ("keda.sh/v1alpha1", "ScaledObject", "lightgbm-iris-predictor"),
    ):
        assert _exists(kube, api_version, kind, name, namespace), f"{kind} {name}"
    wait_for("the activator's ReferenceGrant", lambda: _exists(
        kube, "gateway.networking.k8s.io/v1beta1", "ReferenceGrant",
        f"kserve-stack-activator-from-{namespace}", activator_namespace(namespace)),
        timeout=30)  # fmt: skip
    events = kube.core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=sklearn-iris"
    ).items
    assert any(e.reason == "Reconciled" for e in events), "no event posted"
    # Prune (delete) and put back (watch + apply) work under the role too.
    patch = {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    kube.resource(*ISVC).patch(name="sklearn-iris", namespace=namespace, body=patch,
                               content_type="application/merge-patch+json")  # fmt: skip
    wait_for("the HPA to be pruned on stop", lambda: not _exists(
        kube, "autoscaling/v2", "HorizontalPodAutoscaler", "sklearn-iris-predictor", namespace),
        timeout=60)  # fmt: skip
    kube.apps.delete_namespaced_deployment("sklearn-iris-predictor", namespace)
    wait_for("the deleted Deployment to come back",
             lambda: _exists(kube, "apps/v1", "Deployment", "sklearn-iris-predictor", namespace),
             timeout=60)  # fmt: skip
    log = controller.log_text()
    # A refusal as the API server and the clients word it (reason Forbidden, code 403), not any
    # "403": a random port such as 40351, or a log line stamped at ",403" milliseconds.
    refusal = re.compile(r"[Ff]orbidden|\(403\)|\b(?:code|status)['\"]?:?\s*403\b")
    refusals = [line for line in log.splitlines() if refusal.search(line)]
    assert not refusals, "\n".join(refusals[:20])
    assert "Traceback" not in log, log[-5000:]
