"""From an InferenceService manifest to the processes the local mode starts.

The same defaulting, runtime selection and Deployment builder as the controller: the
predictor's main container becomes a local process (its command looked up next to this
Python, then on PATH), ``/mnt/models`` becomes the local model directory and the ports
become local ones.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kserve_stack_api.inferenceservice import InferenceService
from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime
from kserve_stack_api.validation import InvalidManifestError, parse

from kserve_stack_controller.builders.inferenceservice import Inputs, Plan, build
from kserve_stack_controller.builtin_runtimes import builtin_runtimes
from kserve_stack_controller.config import ControllerConfig
from kserve_stack_controller.constants import MAIN_CONTAINER, MODEL_MOUNT_PATH
from kserve_stack_controller.errors import ReconcileError

#: Images whose entrypoint is a console script of this workspace.
IMAGE_ENTRYPOINTS = {"kserve-stack/runtimes": ["kserve-stack-runtime"]}
LOCAL_NAMESPACE = "local"


class LocalModeError(Exception):
    """The manifest cannot run locally; the message says why and what to do."""


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    http_port: int
    model_name: str


@dataclass
class LocalPlan:
    isvc: InferenceService
    plan: Plan
    storage_uri: str | None
    process: ProcessSpec
    notes: list[str] = field(default_factory=list)


def load_manifests(docs: Iterable[Mapping[str, Any]]) -> tuple[
        InferenceService, list[ServingRuntime], list[ClusterServingRuntime]]:  # fmt: skip
    services: list[InferenceService] = []
    runtimes: list[ServingRuntime] = []
    cluster: list[ClusterServingRuntime] = []
    for doc in docs:
        try:
            model = parse(doc)
        except InvalidManifestError as err:
            raise LocalModeError(str(err)) from None
        if isinstance(model, InferenceService):
            services.append(model)
        elif isinstance(model, ServingRuntime):
            runtimes.append(model)
        elif isinstance(model, ClusterServingRuntime):
            cluster.append(model)
        else:
            raise LocalModeError(f"the local mode runs InferenceServices, not {doc.get('kind')}")
    if len(services) != 1:
        raise LocalModeError(f"expected one InferenceService in the file, found {len(services)}")
    return services[0], runtimes, cluster


def resolve_command(command: list[str]) -> list[str]:
    """``command`` with its program found next to this Python, else on PATH."""
    program = command[0]
    beside = Path(sys.executable).parent / program
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside), *command[1:]]
    found = shutil.which(program)
    if found is None:
        raise LocalModeError(
            f"{program!r} is not installed here (install kserve-stack-runtimes: "
            "uv sync --all-packages)"
        )
    return [found, *command[1:]]


def _local_args(args: list[str], model_dir: Path, http_port: int, grpc_port: int) -> list[str]:
    result = []
    for original in args:
        arg = original.replace(MODEL_MOUNT_PATH, str(model_dir))
        arg = re.sub(r"^--http_port=\d+$", f"--http_port={http_port}", arg)
        result.append(re.sub(r"^--grpc_port=\d+$", f"--grpc_port={grpc_port}", arg))
    if not any(a.startswith("--http_port") for a in result):
        result.append(f"--http_port={http_port}")
    if not any(a.startswith("--grpc_port") for a in result):
        result.append(f"--grpc_port={grpc_port}")
    return result


def plan_local(
    docs: Iterable[Mapping[str, Any]], model_dir: Path, http_port: int, grpc_port: int,
    config: ControllerConfig | None = None,
) -> LocalPlan:  # fmt: skip
    isvc, runtimes, cluster = load_manifests(docs)
    isvc = isvc.model_copy(deep=True)
    isvc.metadata.namespace = isvc.metadata.namespace or LOCAL_NAMESPACE
    notes: list[str] = []
    if isvc.spec.transformer is not None or isvc.spec.explainer is not None:
        raise LocalModeError("the local mode runs the predictor only; remove spec.transformer "
                             "and spec.explainer (or deploy to a cluster)")  # fmt: skip
    try:
        plan = build(Inputs(isvc, config or ControllerConfig(), runtimes,
                            [*cluster, *builtin_runtimes()]))  # fmt: skip
    except ReconcileError as err:
        raise LocalModeError(f"{err.reason}: {err.message}") from None
    deployment = next(o for o in plan.objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = next((c for c in pod["containers"] if c["name"] == MAIN_CONTAINER),
                pod["containers"][0])  # fmt: skip
    command = list(main.get("command") or [])
    if not command:
        image = str(main.get("image", ""))
        repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        if repo not in IMAGE_ENTRYPOINTS:
            raise LocalModeError(
                f"image {image!r} cannot run locally: the local mode runs the kserve-stack "
                "runtime image (or a container with a command installed here)"
            )
        command = IMAGE_ENTRYPOINTS[repo]
    argv = resolve_command(command) + _local_args(list(main.get("args") or []), model_dir,
                                                  http_port, grpc_port)  # fmt: skip
    env = {e["name"]: str(e.get("value", "")) for e in main.get("env") or [] if "value" in e}
    model = plan.isvc.spec.predictor.model
    name = isvc.metadata.name or "model"
    if plan.runtime is not None:
        notes.append(f"runtime {plan.runtime.kind}/{plan.runtime.name}")
    return LocalPlan(
        isvc=plan.isvc, plan=plan, storage_uri=model.storage_uri if model else None,
        process=ProcessSpec(name, argv, env, http_port, name), notes=notes,
    )  # fmt: skip
