"""The built-in ClusterServingRuntimes (KServe's names on the kserve-stack runtime image).

The YAML files here are their one source: the controller installs them at start
(``--install-builtin-runtimes``, what the chart and kustomize run), so they exist as soon as
their CRD does and follow the controller's version on every upgrade; the local mode loads
them from here too.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from kserve_stack_api.servingruntime import ClusterServingRuntime
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.constants import FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY

if TYPE_CHECKING:
    from kserve_stack_controller.kube import Kube

log = logging.getLogger(__name__)


def builtin_manifests() -> list[dict[str, Any]]:
    """Every built-in runtime as written, by name."""
    return [
        yaml.safe_load(entry.read_text())
        for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    ]


def builtin_runtimes() -> list[ClusterServingRuntime]:
    """Every built-in runtime, by name."""
    return [ClusterServingRuntime.model_validate(m) for m in builtin_manifests()]


def install_builtin_runtimes(kube: Kube, image: str | None = None) -> list[str]:
    """Server-side apply the built-in runtimes (``image`` in place of theirs when given);
    the names installed. A runtime a user changed is put back as shipped, as a chart
    upgrade would; one the API server refuses is logged and the others still go in."""
    installed = []
    for manifest in builtin_manifests():
        name = manifest["metadata"]["name"]
        labels = manifest["metadata"].setdefault("labels", {})
        labels[LABEL_MANAGED_BY] = MANAGED_BY
        if image:
            for container in manifest["spec"]["containers"]:
                container["image"] = image
        try:
            kube.apply(manifest, FIELD_MANAGER)
        except ApiException as err:
            log.error(
                "could not install the built-in ClusterServingRuntime %s: %s %s",
                name,
                err.status,
                err.reason,
            )
            continue
        installed.append(name)
    if installed:
        log.info("built-in ClusterServingRuntimes installed: %s", ", ".join(installed))
    return installed
