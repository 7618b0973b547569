"""ServingRuntime / ClusterServingRuntime handlers: a runtime that appears, changes or goes
re-reconciles the InferenceServices of its scope (they may select it, or lose it)."""

from __future__ import annotations

from typing import Any

import kopf

from kserve_stack_controller.state import Operator


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    group, version = "serving.kserve.io", "v1alpha1"

    @kopf.on.event(group, version, "servingruntimes", registry=registry)
    def runtime_changed(event: kopf.RawEvent, **_: Any) -> None:
        meta = (event.get("object") or {}).get("metadata") or {}
        namespace = meta.get("namespace")
        operator.reconciler.runtimes.invalidate(namespace or "")
        if event.get("type") is None:
            return  # the initial listing: the InferenceServices' resume handlers cover it
        if operator.in_scope(namespace):
            operator.reconcile_all(namespace, f"ServingRuntime {meta.get('name')} changed")

    @kopf.on.event(group, version, "clusterservingruntimes", registry=registry)
    def cluster_runtime_changed(event: kopf.RawEvent, **_: Any) -> None:
        operator.reconciler.runtimes.invalidate(None)
        if event.get("type") is None:
            return
        meta = (event.get("object") or {}).get("metadata") or {}
        operator.reconcile_all(None, f"ClusterServingRuntime {meta.get('name')} changed")
