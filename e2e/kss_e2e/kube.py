"""A small helper over the Kubernetes Python client for e2e tests: server-side
apply of manifests, waits with a timeout and a clear message, and a dump of a
namespace (objects, events, component logs) for failure reports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from kss_e2e.backend import Cluster, kubectl_binary

T = TypeVar("T")
FIELD_MANAGER = "kss-e2e"
# Log lines left out of failure dumps: the API server's etcd client logs one per
# closed gRPC channel whenever CRD storage is rebuilt, which says nothing.
LOG_NOISE = ("grpc: addrConn.createTransport failed to connect",)


class WaitTimeoutError(AssertionError):
    """A wait_for() that ran out of time; says what it waited for and what it saw."""


def wait_for(
    what: str,
    probe: Callable[[], T],
    timeout: float = 60.0,
    interval: float = 0.5,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    ``probe`` may raise AssertionError or ApiException to mean "not yet"; the
    last one is quoted when the wait times out.
    """
    deadline = time.monotonic() + timeout
    last: str = "never probed"
    while True:
        try:
            value = probe()
        except (AssertionError, ApiException) as err:
            last = f"{type(err).__name__}: {str(err)[:500]}"
        else:
            if value:
                return value
            last = f"probe returned {value!r}"
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what} ({last})")
        time.sleep(interval)


def load_manifests(
    source: str | Path | dict[str, Any] | Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Objects from a YAML string, a YAML file, one object or a list of objects."""
    if isinstance(source, dict):
        return [source]
    if isinstance(source, Path):
        source = source.read_text()
    if isinstance(source, str):
        return [doc for doc in yaml.safe_load_all(source) if doc]
    return list(source)


class Kube:
    """Clients for one cluster, plus apply / wait / dump helpers."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.admission = client.AdmissionregistrationV1Api(self.api_client)
        self.apiext = client.ApiextensionsV1Api(self.api_client)
        self._dynamic: DynamicClient | None = None

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api_client)  # type: ignore[no-untyped-call]
        return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(
        self,
        source: str | Path | dict[str, Any] | Iterable[dict[str, Any]],
        namespace: str | None = None,
    ) -> list[Any]:
        """Server-side apply every object (namespaced ones into ``namespace``)."""
        applied = []
        for obj in load_manifests(source):
            res = self.resource(obj["apiVersion"], obj["kind"])
            ns = obj["metadata"].get("namespace") or (namespace if res.namespaced else None)
            applied.append(
                res.server_side_apply(
                    body=obj,
                    name=obj["metadata"]["name"],
                    namespace=ns,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                )
            )
        return applied

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        cmd = [kubectl_binary(), f"--kubeconfig={self.cluster.kubeconfig}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout + (result.stderr if not check else "")

    # ----------------------------------------------------------------- namespaces

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name, labels={"kserve-stack/e2e": "true", **(labels or {})}
            )
        )
        self.core.create_namespace(body)
        # The ServiceAccount controller creates "default"; pods need it to be admitted.
        wait_for(
            f"ServiceAccount default in {name}",
            lambda: self.core.read_namespaced_service_account("default", name),
            timeout=30,
        )

    def delete_namespace(self, name: str, wait: bool = False, timeout: float = 60) -> None:
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
        if wait:

            def gone() -> bool:
                try:
                    self.core.read_namespace(name)
                except ApiException as err:
                    return bool(err.status == 404)
                return False

            wait_for(f"namespace {name} to be deleted", gone, timeout=timeout)

    # ----------------------------------------------------------------- diagnostics

    def dump_namespace(self, namespace: str, log_lines: int = 40) -> str:
        """Objects, events and component logs: the text attached to a failed test."""
        parts: list[str] = []

        def section(title: str, body: str) -> None:
            parts.append(f"----- {title}\n{body.rstrip() or '(empty)'}\n")

        section(
            f"kubectl get all,configmaps,events -n {namespace}",
            self.kubectl(
                "get", "all,configmaps,events", "-n", namespace, "-o", "wide", check=False
            ),
        )
        section(
            f"kubectl describe pods -n {namespace}",
            self.kubectl("describe", "pods", "-n", namespace, check=False)[-8000:],
        )
        section("kubectl get nodes", self.kubectl("get", "nodes", "-o", "wide", check=False))
        for path in self.cluster.component_logs().values():
            try:
                lines = [
                    line
                    for line in path.read_text(errors="replace").splitlines()
                    if not any(noise in line for noise in LOG_NOISE)
                ][-log_lines:]
            except OSError as err:
                lines = [f"(cannot read {path}: {err})"]
            section(f"last {log_lines} lines of {path}", "\n".join(lines))
        if self.cluster.backend == "kind":
            section(
                "kube-system pods",
                self.kubectl("get", "pods", "-n", "kube-system", "-o", "wide", check=False),
            )
        return "\n".join(parts)
