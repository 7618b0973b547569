"""Pods, Deployments and Services of an InferenceService's components.

The predictor's main container is the runtime's ``kserve-container`` with its template
arguments substituted and the model's container fields merged over it (image tag from
``runtimeVersion``, args appended, env merged by name, resources merged by key). The pod
takes the runtime's pod fields, then the component's.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kserve_stack_api.core import PodSpecFields
from kserve_stack_api.inferenceservice import InferenceService, ModelSpec

from kserve_stack_controller.builders.selection import SelectedRuntime
from kserve_stack_controller.builders.storage import ModelStorage
from kserve_stack_controller.builders.templating import TemplateArgs, render
from kserve_stack_controller.constants import (
    ANN_REVISION,
    ANN_RUNTIME,
    LABEL_APP,
    LABEL_COMPONENT,
    LABEL_ISVC,
    LABEL_MANAGED_BY,
    LABEL_REVISION_ROLE,
    MAIN_CONTAINER,
    MANAGED_BY,
)
from kserve_stack_controller.errors import InvalidSpecError

JsonDict = dict[str, Any]
DEFAULT_PORT = 8080

# Runtime pod-level fields copied into the pod (wire names).
_RUNTIME_POD_FIELDS = (
    "volumes",
    "nodeSelector",
    "tolerations",
    "affinity",
    "imagePullSecrets",
    "schedulerName",
    "hostIPC",
)


def component_name(isvc_name: str, component: str) -> str:
    """KServe's child name: ``<isvc>-predictor``, ``<isvc>-transformer``, ..."""
    return f"{isvc_name}-{component}"


def app_label(workload_name: str) -> str:
    return f"isvc.{workload_name}"


def revision_of(pod_template: Mapping[str, Any]) -> str:
    """A short, stable hash of a pod template: the revision a Deployment runs."""
    text = json.dumps(pod_template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _merge_env(base: Sequence[JsonDict], over: Sequence[JsonDict]) -> list[JsonDict]:
    merged = {item["name"]: item for item in base}
    for item in over:
        merged[item["name"]] = item
    return list(merged.values())


def _merge_resources(base: JsonDict | None, over: JsonDict | None) -> JsonDict:
    result: JsonDict = copy.deepcopy(base or {})
    for key, value in (over or {}).items():
        if key in ("requests", "limits") and isinstance(value, dict):
            result[key] = {**(result.get(key) or {}), **value}
        else:
            result[key] = value
    return {k: v for k, v in result.items() if v}


def merge_container(base: JsonDict, over: JsonDict) -> JsonDict:
    """``over`` (the InferenceService's fields) merged onto ``base`` (the runtime's)."""
    result = copy.deepcopy(base)
    for key, value in over.items():
        if key == "args":
            result["args"] = [*(result.get("args") or []), *value]
        elif key == "env":
            result["env"] = _merge_env(result.get("env") or [], value)
        elif key == "resources":
            result["resources"] = _merge_resources(result.get("resources"), value)
        elif key == "volumeMounts":
            result["volumeMounts"] = [*(result.get("volumeMounts") or []), *value]
        else:
            result[key] = copy.deepcopy(value)
    return result


def _with_tag(image: str, tag: str) -> str:
    repo = image.split("@", 1)[0]
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo = repo[:colon]
    return f"{repo}:{tag}"


def _render_container(container: JsonDict, args: TemplateArgs, where: str) -> JsonDict:
    result = copy.deepcopy(container)
    for key in ("command", "args"):
        if key in result:
            result[key] = [render(str(a), args, f"{where}.{key}") for a in result[key]]
    for env in result.get("env") or []:
        if "value" in env and env["value"] is not None:
            env["value"] = render(str(env["value"]), args, f"{where}.env")
    return result


def _ensure_port(container: JsonDict) -> JsonDict:
    if not container.get("ports"):
        container["ports"] = [{"containerPort": DEFAULT_PORT, "name": "http1", "protocol": "TCP"}]
    return container


def main_port(pod: Mapping[str, Any]) -> int:
    """The port the component's Service targets: the main container's first port."""
    containers = pod.get("containers") or []
    for container in containers:
        if container.get("name") == MAIN_CONTAINER and container.get("ports"):
            return int(container["ports"][0]["containerPort"])
    for container in containers:
        if container.get("ports"):
            return int(container["ports"][0]["containerPort"])
    return DEFAULT_PORT


def _component_pod_fields(component: PodSpecFields) -> JsonDict:
    fields = component.pod_spec_fields()
    fields.pop("containers", None)
    return fields


def predictor_pod(
    isvc: InferenceService,
    model: ModelSpec,
    runtime: SelectedRuntime,
    storage: ModelStorage,
    args: TemplateArgs,
) -> JsonDict:
    """The predictor's PodSpec for a model served by ``runtime``."""
    predictor = isvc.spec.predictor
    runtime_wire = runtime.spec.to_wire()
    containers = [c for c in runtime_wire.get("containers", [])]
    if not containers:
        raise InvalidSpecError(f"{runtime.kind} {runtime.name!r} has no containers")
    main_index = next((i for i, c in enumerate(containers) if c.get("name") == MAIN_CONTAINER), 0)
    where = f"{runtime.kind} {runtime.name}.containers[{main_index}]"
    main = _render_container(containers[main_index], args, where)
    main["name"] = MAIN_CONTAINER

    model_fields = model.to_wire()
    for key in (
        "modelFormat",
        "runtime",
        "storageUri",
        "runtimeVersion",
        "protocolVersion",
        "storage",
        "name",
    ):
        model_fields.pop(key, None)
    main = merge_container(main, model_fields)
    if model.runtime_version:
        main["image"] = _with_tag(str(main.get("image", "")), model.runtime_version)
    # A predictor container named kserve-container overrides the model container's fields;
    # other predictor containers run beside it.
    sidecars: list[JsonDict] = []
    for extra in predictor.containers or ():
        wire = extra.to_wire()
        if wire.get("name") == MAIN_CONTAINER:
            main = merge_container(main, wire)
        else:
            sidecars.append(wire)
    if storage.mounts:
        main["volumeMounts"] = [*(main.get("volumeMounts") or []), *storage.mounts]
    _ensure_port(main)

    others = [
        _render_container(c, args, f"{runtime.kind} {runtime.name}.containers[{i}]")
        for i, c in enumerate(containers)
        if i != main_index
    ]
    pod: JsonDict = {
        k: copy.deepcopy(runtime_wire[k]) for k in _RUNTIME_POD_FIELDS if k in runtime_wire
    }
    pod.update(_component_pod_fields(predictor))
    pod["containers"] = [main, *others, *sidecars]
    if storage.init_containers:
        pod["initContainers"] = [*storage.init_containers, *(pod.get("initContainers") or [])]
    if storage.volumes:
        pod["volumes"] = [*(pod.get("volumes") or []), *storage.volumes]
    return pod


def custom_pod(
    component: PodSpecFields, args: TemplateArgs, where: str, extra_args: Sequence[str] = ()
) -> JsonDict:
    """The PodSpec of a component given as containers (custom predictor, transformer, ...)."""
    containers = [c.to_wire() for c in component.containers or ()]
    if not containers:
        raise InvalidSpecError(f"{where}: needs containers")
    containers = [
        _render_container(c, args, f"{where}.containers[{i}]") for i, c in enumerate(containers)
    ]
    main = containers[0]
    if extra_args:
        present = {str(a).split("=", 1)[0] for a in main.get("args") or []}
        missing: list[str] = []
        for i in range(0, len(extra_args), 2):
            if extra_args[i] not in present:
                missing.extend(extra_args[i : i + 2])
        if missing:
            main["args"] = [*(main.get("args") or []), *missing]
    _ensure_port(main)
    pod = _component_pod_fields(component)
    pod["containers"] = containers
    return pod


@dataclass(frozen=True)
class Workload:
    """One Deployment + Service of a component (the stable or the canary revision)."""

    component: str
    name: str
    role: str  # "stable" or "canary"
    pod: JsonDict
    revision: str
    replicas: int | None


def base_labels(isvc: InferenceService, component: str) -> dict[str, str]:
    meta = isvc.metadata
    return {
        **(meta.labels or {}),
        LABEL_ISVC: meta.name or "",
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def deployment(
    isvc: InferenceService,
    workload: Workload,
    *,
    pod_labels: Mapping[str, str],
    pod_annotations: Mapping[str, str],
    runtime_name: str | None,
    strategy: JsonDict | None,
) -> JsonDict:
    labels = {
        **base_labels(isvc, workload.component),
        LABEL_APP: app_label(workload.name),
        LABEL_REVISION_ROLE: workload.role,
    }
    annotations = {ANN_REVISION: workload.revision}
    if runtime_name:
        annotations[ANN_RUNTIME] = runtime_name
    template_labels = {**pod_labels, **labels}
    spec: JsonDict = {
        "selector": {"matchLabels": {LABEL_APP: app_label(workload.name)}},
        "template": {
            "metadata": {
                "labels": template_labels,
                "annotations": {**pod_annotations, ANN_REVISION: workload.revision},
            },
            "spec": workload.pod,
        },
    }
    if workload.replicas is not None:
        spec["replicas"] = workload.replicas
    if strategy:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": workload.name,
            "namespace": isvc.metadata.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def service(isvc: InferenceService, workload: Workload) -> JsonDict:
    port = main_port(workload.pod)
    labels = {
        **base_labels(isvc, workload.component),
        LABEL_APP: app_label(workload.name),
        LABEL_REVISION_ROLE: workload.role,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": workload.name,
            "namespace": isvc.metadata.namespace,
            "labels": labels,
        },
        "spec": {
            "selector": {LABEL_APP: app_label(workload.name)},
            "ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP"}],
        },
    }
