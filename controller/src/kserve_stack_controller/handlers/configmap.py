"""The ConfigMap ``inferenceservice-config``: read at start, watched afterwards; a change
re-reconciles every InferenceService (no restart)."""

from __future__ import annotations

from typing import Any

import kopf

from kserve_stack_controller.config import CONFIGMAP_NAME
from kserve_stack_controller.state import Operator


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    config_namespace = operator.settings.config_namespace

    @kopf.on.event(
        "",
        "v1",
        "configmaps",
        registry=registry,
        field="metadata.name",
        value=CONFIGMAP_NAME,
        when=lambda namespace, **_: namespace == config_namespace,
    )
    def config_changed(event: kopf.RawEvent, **_: Any) -> None:
        obj: dict[str, Any] = dict(event.get("object") or {})
        data = None if event.get("type") == "DELETED" else obj.get("data")
        if operator.load_config(data) and event.get("type") is not None:
            operator.reconcile_all(None, "inferenceservice-config changed")
