"""``--wake scale``: the activator scales a Deployment from 0 to 1 itself.

Without KEDA (or to skip Prometheus' scrape interval plus KEDA's polling interval on a cold
start), the activator patches ``deployments/scale`` of the target (the component's
Deployment has its Service's name) when a request is held and the Deployment states 0
replicas. It never scales down and never touches a Deployment above 0: the autoscaler owns
the replicas from there. One attempt per Service per ``cooldown`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.activator.endpoints import Key
from kserve_stack_controller.activator.metrics import Metrics

log = logging.getLogger("kserve_stack_controller.activator.wake")


class ScaleWaker:
    def __init__(self, api_client: client.ApiClient, metrics: Metrics, cooldown: float = 10.0):
        self.apps = client.AppsV1Api(api_client)
        self.metrics = metrics
        self.cooldown = cooldown
        self._last: dict[Key, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self, key: Key) -> None:
        """Start a scale-up of ``key`` in the background (at most one per cooldown)."""
        now = time.monotonic()
        if now - self._last.get(key, -self.cooldown) < self.cooldown:
            return
        self._last[key] = now
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._scale_up, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _scale_up(self, key: Key) -> None:
        namespace, name = key
        try:
            scale = self.apps.read_namespaced_deployment_scale(name, namespace)
            if scale.spec is not None and (scale.spec.replicas or 0) > 0:
                return
            self.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 1}})
        except ApiException as err:
            log.warning(
                "cannot scale Deployment %s/%s from zero: %s %s",
                namespace,
                name,
                err.status,
                err.reason,
                extra={"namespace": namespace, "service": name},
            )
            return
        self.metrics.scale_ups.labels(namespace, name).inc()
        log.info(
            "scaled Deployment %s/%s from 0 to 1 for a held request",
            namespace,
            name,
            extra={"namespace": namespace, "service": name},
        )


class NoWaker:
    """``--wake metric``: the pending-requests gauge is the only signal (KEDA acts on it)."""

    def wake(self, key: Key) -> None:
        return None
