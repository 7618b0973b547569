"""ServingRuntimes and ClusterServingRuntimes, listed once per scope and kept until their
watch reports a change, so that a reconcile does not list them for every InferenceService.

The runtime watchers (``handlers/servingruntime.py``) call ``invalidate`` on every event,
the initial listing and the re-listing after a lost watch included. A listing that raced
with an invalidation is used once and not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime

from kserve_stack_controller.kube import Kube

#: The cache key of the cluster scope (ClusterServingRuntimes).
CLUSTER = "\x00cluster"


class RuntimeCache:
    def __init__(self, kube: Kube, parse: Callable[[list[dict[str, Any]], type[Any]], list[Any]]):
        self.kube = kube
        self._parse = parse
        self._lock = threading.Lock()
        self._entries: dict[str, list[Any]] = {}
        self._versions: dict[str, int] = {}

    def namespace_runtimes(self, namespace: str | None) -> list[ServingRuntime]:
        return self._get(namespace or "", lambda: self._list("ServingRuntime", namespace))

    def cluster_runtimes(self) -> list[ClusterServingRuntime]:
        return self._get(CLUSTER, lambda: self._list("ClusterServingRuntime", None))

    def invalidate(self, namespace: str | None) -> None:
        """Forget the runtimes of ``namespace`` (None: the ClusterServingRuntimes)."""
        key = CLUSTER if namespace is None else namespace
        with self._lock:
            self._entries.pop(key, None)
            self._versions[key] = self._versions.get(key, 0) + 1

    def _list(self, kind: str, namespace: str | None) -> list[Any]:
        items = self.kube.list(kind, namespace)
        model = ServingRuntime if kind == "ServingRuntime" else ClusterServingRuntime
        return self._parse(items, model)

    def _get(self, key: str, load: Callable[[], list[Any]]) -> list[Any]:
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            version = self._versions.get(key, 0)
        loaded = load()
        with self._lock:
            if self._versions.get(key, 0) == version:
                self._entries[key] = loaded
        return loaded
