"""A small synchronous Kubernetes client over the official one: paths for the kinds the
controller touches, JSON in and out, and ApiException for errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    prefix: str  # "api/v1" or "apis/GROUP/VERSION"
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/" + "/".join(parts)


KINDS: dict[str, Kind] = {
    "Deployment": Kind("apis/apps/v1", "deployments"),
    "Service": Kind("api/v1", "services"),
    "ConfigMap": Kind("api/v1", "configmaps"),
    "Secret": Kind("api/v1", "secrets"),
    "Event": Kind("api/v1", "events"),
    "HorizontalPodAutoscaler": Kind("apis/autoscaling/v2", "horizontalpodautoscalers"),
    "ScaledObject": Kind("apis/keda.sh/v1alpha1", "scaledobjects"),
    "HTTPRoute": Kind("apis/gateway.networking.k8s.io/v1", "httproutes"),
    "Ingress": Kind("apis/networking.k8s.io/v1", "ingresses"),
    "ReferenceGrant": Kind("apis/gateway.networking.k8s.io/v1beta1", "referencegrants"),
    "InferenceService": Kind("apis/serving.kserve.io/v1beta1", "inferenceservices"),
    "ServingRuntime": Kind("apis/serving.kserve.io/v1alpha1", "servingruntimes"),
    "ClusterServingRuntime": Kind(
        "apis/serving.kserve.io/v1alpha1", "clusterservingruntimes", namespaced=False
    ),
    "MutatingWebhookConfiguration": Kind(
        "apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", False
    ),
    "ValidatingWebhookConfiguration": Kind(
        "apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", False
    ),
}


def _raw(_client: object, data: JsonDict) -> JsonDict:
    return data


#: Connections kept to the API server: kopf's handler threads (8), the refresh threads (2),
#: the event poster and the event loop's helper threads.
POOL_SIZE = 16


class Kube:
    """JSON requests to the API server of a kubeconfig (or the in-cluster account)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self._dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            api_client = client.ApiClient()
        except config.ConfigException:
            api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        # One kept-alive connection per thread that talks to the API server: a connection
        # the pool cannot keep is closed, and the next request pays a new TLS handshake.
        api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = POOL_SIZE
        return cls(api_client)

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> JsonDict:
        result = self._dynamic.request(method, path, body=body, serializer=_raw, **params)
        return result if isinstance(result, dict) else {}

    def get(self, kind: str, name: str, namespace: str | None = None) -> JsonDict | None:
        try:
            return self.request("get", KINDS[kind].path(namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[JsonDict]:
        """Items of ``kind``; an empty list when the kind is not served (CRD absent)."""
        try:
            found = self.request("get", KINDS[kind].path(namespace), label_selector=label_selector)
        except ApiException as err:
            if err.status == 404:
                return []
            raise
        return list(found.get("items") or [])

    def apply(self, obj: JsonDict, field_manager: str, force: bool = True) -> JsonDict:
        kind = KINDS[obj["kind"]]
        meta = obj["metadata"]
        return self.request(
            "patch",
            kind.path(meta.get("namespace"), meta["name"]),
            body=obj,
            content_type="application/apply-patch+yaml",
            field_manager=field_manager,
            force_conflicts=force,
        )

    def merge_patch(
        self, kind: str, name: str, namespace: str | None, body: JsonDict, field_manager: str
    ) -> JsonDict:
        """A JSON merge patch: lists in ``body`` replace the live ones whole."""
        return self.request(
            "patch",
            KINDS[kind].path(namespace, name),
            body=body,
            content_type="application/merge-patch+json",
            field_manager=field_manager,
        )

    def delete(
        self, kind: str, name: str, namespace: str | None = None, propagation: str = "Background"
    ) -> bool:
        try:
            self.request(
                "delete", KINDS[kind].path(namespace, name), propagation_policy=propagation
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    def patch_status(
        self, kind: str, name: str, namespace: str | None, status: JsonDict
    ) -> JsonDict:
        return self.request(
            "patch",
            KINDS[kind].path(namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )
