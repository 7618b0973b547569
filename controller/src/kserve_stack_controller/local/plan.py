"""From an InferenceService manifest to the processes the local mode starts.

The same defaulting, runtime selection and pod builder as the controller: the main container
of the predictor (and of the transformer, if any) becomes a local process, ``/mnt/models``
becomes the local model directory, the ports become local ones and the transformer's
``--predictor_host`` names the local predictor.

What can run: a container whose command is ``python -m MODULE`` with MODULE importable by
this Python, or a program found next to this Python or on PATH (``kserve-stack-runtime``),
or, without a command, the kserve-stack runtime image (its entrypoint is
``kserve-stack-runtime``). A container image cannot run here, so anything else is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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
#: The components the local mode runs, in start order.
COMPONENTS = ("predictor", "transformer")
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
RUNNABLE = (
    "the local mode runs a container whose command is `python -m MODULE` (MODULE importable "
    "in this Python environment) or a program installed next to this Python or on PATH "
    "(such as kserve-stack-runtime), or the kserve-stack/runtimes image without a command"
)


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
class LocalComponent:
    """One component's main container, as a command that runs here (ports not yet local)."""

    component: str  # predictor, transformer
    name: str  # <isvc>-<component>, the name of its Deployment in a cluster
    argv: list[str]  # the program resolved here, then the container's args
    env: dict[str, str]


@dataclass
class LocalPlan:
    isvc: InferenceService
    plan: Plan
    name: str
    storage_uri: str | None
    components: list[LocalComponent]
    notes: list[str] = field(default_factory=list)

    @property
    def entry(self) -> str:
        """The component requests go to: the transformer when there is one (as the route)."""
        return self.components[-1].component


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
        hint = (" (install kserve-stack-runtimes: uv sync --all-packages)"
                if program.startswith("kserve-stack") else "")  # fmt: skip
        raise LocalModeError(
            f"{program!r} is not installed here: not next to {sys.executable}, nor on PATH{hint}"
        )
    return [found, *command[1:]]


def _importable(module: str, env: Mapping[str, str]) -> bool:
    # Asked of a child Python with the container's env and this directory first on sys.path,
    # as `python -m` will see it (and without importing the module into this process).
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)"
    result = subprocess.run(
        [sys.executable, "-c", check, module], env={**os.environ, **env},
        capture_output=True, check=False,
    )  # fmt: skip
    return result.returncode == 0


def _local_argv(where: str, container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The container's command and args as a command line that runs here, or refused."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command:
        image = str(container.get("image", ""))
        repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        if repo not in IMAGE_ENTRYPOINTS:
            raise LocalModeError(f"{where}: image {image!r} cannot run locally: {RUNNABLE}")
        command = IMAGE_ENTRYPOINTS[repo]
    argv = [*command, *args]
    if _PYTHON.match(Path(argv[0]).name):
        if len(argv) > 2 and argv[1] == "-m" and not _importable(argv[2], env):
            raise LocalModeError(
                f"{where}: module {argv[2]!r} is not importable by {sys.executable} (install "
                "it into this environment or set PYTHONPATH in the container's env); "
                f"{RUNNABLE}"
            )
        return [sys.executable, *argv[1:]]
    try:
        return resolve_command(argv)
    except LocalModeError as err:
        raise LocalModeError(f"{where}: {err}; {RUNNABLE}") from None


def plan_local(docs: Iterable[Mapping[str, Any]],
               config: ControllerConfig | None = None) -> LocalPlan:  # fmt: skip
    """Build the InferenceService as the controller would, and find what runs here."""
    isvc, runtimes, cluster = load_manifests(docs)
    isvc = isvc.model_copy(deep=True)
    isvc.metadata.namespace = isvc.metadata.namespace or LOCAL_NAMESPACE
    if isvc.spec.explainer is not None:
        raise LocalModeError(
            "the local mode does not run spec.explainer: in a cluster the route sends :explain "
            "requests to it, and there is no route here; remove spec.explainer to run the "
            "predictor (and transformer) locally, or deploy to a cluster"
        )
    try:
        plan = build(Inputs(isvc, config or ControllerConfig(), runtimes,
                            [*cluster, *builtin_runtimes()]))  # fmt: skip
    except ReconcileError as err:
        raise LocalModeError(f"{err.reason}: {err.message}") from None
    components: list[LocalComponent] = []
    for component in COMPONENTS:
        if component not in plan.components:
            continue
        workload = plan.components[component].workloads[0]
        containers = workload.pod["containers"]
        main = next((c for c in containers if c["name"] == MAIN_CONTAINER), containers[0])
        env = {e["name"]: str(e.get("value", "")) for e in main.get("env") or [] if "value" in e}
        argv = _local_argv(f"spec.{component}", main, env)
        components.append(LocalComponent(component, workload.name, argv, env))
    model = plan.isvc.spec.predictor.model
    notes = [f"runtime {plan.runtime.kind}/{plan.runtime.name}"] if plan.runtime else []
    return LocalPlan(
        isvc=plan.isvc, plan=plan, name=isvc.metadata.name or "model",
        storage_uri=model.storage_uri if model else None, components=components, notes=notes,
    )  # fmt: skip


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` (the last one given)."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with every ``--flag=x`` / ``--flag x`` set to ``value``; appended if absent."""
    result: list[str] = []
    found = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag and i + 1 < len(argv):
            result += [flag, value]
            found = True
            i += 2
            continue
        if arg.startswith(flag + "="):
            arg = f"{flag}={value}"
            found = True
        result.append(arg)
        i += 1
    return result if found else [*result, f"{flag}={value}"]


def _connect_host(host: str) -> str:
    """Where a local client reaches a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)


def local_processes(
    local: LocalPlan, model_dir: Path, host: str, ports: Mapping[str, tuple[int, int]]
) -> list[ProcessSpec]:
    """The processes to start: ``ports`` gives each component its (REST, gRPC) ports."""
    processes = []
    for part in local.components:
        http_port, grpc_port = ports[part.component]
        argv = [a.replace(MODEL_MOUNT_PATH, str(model_dir)) for a in part.argv]
        argv = set_flag(argv, "--http_port", str(http_port))
        argv = set_flag(argv, "--grpc_port", str(grpc_port))
        argv = set_flag(argv, "--host", host)
        if part.component == "transformer":
            # In a cluster: the predictor's Service; here: the local predictor's REST port.
            predictor = f"{_connect_host(host)}:{ports['predictor'][0]}"
            argv = set_flag(argv, "--predictor_host", predictor)
        model_name = flag_value(argv, "--model_name") or local.name
        processes.append(ProcessSpec(part.name, argv, part.env, http_port, model_name))
    return processes
