"""What the running operator shares between its handlers: the Kubernetes client, the
current configuration (replaced when the ConfigMap changes) and the reconciler."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.config import ConfigError, ControllerConfig, from_configmap_data
from kserve_stack_controller.kube import Kube
from kserve_stack_controller.metrics import Metrics
from kserve_stack_controller.reconcile import Outcome, Reconciler

log = logging.getLogger(__name__)


@dataclass
class Settings:
    """The operator's settings, built once from the command line in ``__main__``."""

    namespaces: list[str] = field(default_factory=list)  # empty: every namespace
    config_namespace: str = "kserve"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 9443
    webhook_cert_dir: str | None = None
    webhook_url: str | None = None
    webhook_config_name: str = "kserve-stack-webhook"
    webhook_secret: str | None = None
    webhook_service: str = "kserve-stack-webhook"
    webhook_namespace: str = "kserve"
    install_runtimes: bool = False
    runtime_image: str | None = None
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    log_level: str = "INFO"
    kubeconfig: str | None = None


class Operator:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = Metrics()
        self._config = ControllerConfig()
        self._config_lock = threading.Lock()
        self.reconciler = Reconciler(kube, self.config)
        self.started = False

    def config(self) -> ControllerConfig:
        with self._config_lock:
            return self._config

    def load_config(self, data: Mapping[str, str] | None) -> bool:
        """Take a new ConfigMap ``data``; False (and the old config kept) when it is invalid."""
        try:
            parsed = from_configmap_data(data)
        except ConfigError as err:
            log.error("keeping the previous configuration: %s", err)
            return False
        with self._config_lock:
            changed = parsed != self._config
            self._config = parsed
        if changed:
            log.info(
                "configuration %s/inferenceservice-config loaded", self.settings.config_namespace
            )
        return changed

    def reconcile(self, body: Mapping[str, Any], quick: bool = False) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = self.reconciler.reconcile(body, quick)
        except Exception:
            self.metrics.reconciled("error", time.perf_counter() - started)
            raise
        result = "failed" if outcome.error else "ok"
        self.metrics.reconciled(result, time.perf_counter() - started)
        return outcome

    def forget(self, uid: str) -> None:
        self.reconciler.forget(uid)

    def in_scope(self, namespace: str | None) -> bool:
        return not self.settings.namespaces or namespace in self.settings.namespaces

    def inference_services(self, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        scopes: list[str | None] = [namespace]
        if namespace is None and self.settings.namespaces:
            scopes = list(self.settings.namespaces)
        for scope in scopes:
            yield from self.kube.list("InferenceService", scope)

    def reconcile_all(self, namespace: str | None = None, why: str = "") -> int:
        count = 0
        for body in self.inference_services(namespace):
            if body["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.reconcile(body)
            except ApiException as err:  # one object's trouble must not starve the others
                meta = body["metadata"]
                log.warning(
                    "InferenceService %s/%s: reconcile failed: API server answered %s %s",
                    meta.get("namespace"),
                    meta["name"],
                    err.status,
                    err.reason,
                )
                continue
            count += 1
        if count:
            log.info("re-reconciled %d InferenceServices%s", count, f": {why}" if why else "")
        return count
