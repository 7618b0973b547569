"""``kserve-stack``: run an InferenceService on this machine, no cluster needed.

kserve-stack quickstart                 # train a sample iris model and serve it
kserve-stack run -f service.yaml        # serve a sklearn/xgboost/lightgbm model (+ transformer)
kserve-stack sample-model --out DIR     # only write the sample model
kserve-stack runtimes                   # the built-in ClusterServingRuntimes
kserve-stack config-defaults            # the ConfigMap inferenceservice-config defaults
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from kserve_stack_controller.builtin_runtimes import builtin_runtimes
from kserve_stack_controller.config import ControllerConfig, to_configmap_data
from kserve_stack_controller.local.plan import (
    LocalModeError,
    LocalPlan,
    local_processes,
    plan_local,
    resolve_command,
)
from kserve_stack_controller.local.sample_model import write_sample_model
from kserve_stack_controller.local.supervisor import Backoff, Supervisor, supervise

DEFAULT_CACHE = Path.home() / ".cache" / "kserve-stack" / "models"
QUICKSTART_NAME = "sklearn-iris"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fetch_model(storage_uri: str, name: str, cache: Path) -> Path:
    """Download ``storage_uri`` with the storage initializer into the local cache."""
    dest = cache / "services" / name
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        *resolve_command(["kserve-stack-storage-initializer"]),
        *(storage_uri, str(dest), "--cache-dir", str(cache / "store"), "--symlink"),
    ]
    print(f"[kserve-stack] fetching {storage_uri} into {dest}", flush=True)
    result = subprocess.run(argv, check=False)
    if result.returncode != 0:
        raise LocalModeError(f"the storage initializer could not fetch {storage_uri} "
                             f"(exit {result.returncode}); its log is above")  # fmt: skip
    return dest


def _wait_ready(bases: list[str], message: str, supervisor: Supervisor, timeout: float) -> None:
    """Say ``message`` once every server of ``bases`` answers /v2/health/ready."""
    deadline = time.monotonic() + timeout
    for base in bases:
        url = f"{base}/v2/health/ready"
        while not supervisor.stopping.is_set():
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                supervisor.say(f"not ready after {timeout:.0f}s: {url} does not answer 200")
                return
            time.sleep(0.3)
    if not supervisor.stopping.is_set():
        supervisor.say(message)


def _watch_ready(bases: list[str], message: str, supervisor: Supervisor,
                 timeout: float) -> Callable[[subprocess.Popen[str]], None]:  # fmt: skip
    def on_start(_process: subprocess.Popen[str]) -> None:
        threading.Thread(
            target=_wait_ready, args=(bases, message, supervisor, timeout), daemon=True
        ).start()

    return on_start


def serve(docs: list[dict[str, Any]], args: argparse.Namespace) -> int:
    cache: Path = args.cache_dir
    local: LocalPlan = plan_local(docs)
    name = local.name
    if local.storage_uri:
        model_dir = fetch_model(local.storage_uri, name, cache)
    else:
        model_dir = cache / "services" / "_pending"
    # --port / --grpc-port are the entry's (the transformer's when there is one, as the
    # route's); the components behind it get free ports.
    ports = {
        part.component: (
            (part.component == local.entry and args.port) or free_port(args.host),
            (part.component == local.entry and args.grpc_port) or free_port(args.host),
        )
        for part in local.components
    }
    processes = local_processes(local, model_dir, args.host, ports)
    for note in local.notes + local.plan.decisions[:1]:
        print(f"[kserve-stack] {note}", flush=True)
    stopping = threading.Event()
    backoff = Backoff(max_restarts=args.max_restarts)
    bases = {p.name: f"http://{args.host}:{p.http_port}" for p in processes}
    entry = processes[-1]
    supervisors: list[Supervisor] = []
    for process in processes:
        if process is entry:
            # Ready when the whole chain is: the predictor behind, then the entry.
            waits = list(bases.values())
            message = f"ready: POST {bases[entry.name]}/v1/models/{entry.model_name}:predict"
        else:
            waits = [bases[process.name]]
            message = f"{process.name} ready at {bases[process.name]}"
        supervisor = Supervisor(process, backoff, stopping=stopping)
        supervisor.on_start = _watch_ready(waits, message, supervisor, args.ready_timeout)
        supervisors.append(supervisor)
    for process in processes[:-1]:
        supervisors[-1].say(f"{process.name} at {bases[process.name]} (behind {entry.name})")
    supervisors[-1].say(f"serving {name} at {bases[entry.name]} (Ctrl-C stops)")
    return supervise(supervisors)


def _run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.file) == "-" else Path(args.file).read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    return serve(docs, args)


def _quickstart(args: argparse.Namespace) -> int:
    model_dir = args.cache_dir / "samples" / QUICKSTART_NAME
    path = write_sample_model(model_dir)
    print(f"[kserve-stack] trained a sample iris model: {path}", flush=True)
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": QUICKSTART_NAME},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                         "storageUri": f"file://{model_dir}"}}},
    }  # fmt: skip
    print("[kserve-stack] try: curl -s -H 'Content-Type: application/json' -d "
          "'{\"instances\": [[6.8, 2.8, 4.8, 1.4]]}' "
          f"http://{args.host}:<port>/v1/models/{QUICKSTART_NAME}:predict", flush=True)  # fmt: skip
    return serve([doc], args)


def _sample_model(args: argparse.Namespace) -> int:
    print(write_sample_model(args.out))
    return 0


def _runtimes(_args: argparse.Namespace) -> int:
    for runtime in builtin_runtimes():
        formats = ", ".join(f.name + (f":{f.version}" if f.version else "")
                            for f in runtime.spec.supported_model_formats or [])  # fmt: skip
        print(
            f"{runtime.metadata.name}\t{formats}\t" + ",".join(runtime.spec.protocol_versions or [])
        )
    return 0


def _config_defaults(_args: argparse.Namespace) -> int:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "inferenceservice-config"},
                 "data": to_configmap_data(ControllerConfig())}  # fmt: skip
    print(yaml.safe_dump(configmap, sort_keys=False), end="")
    return 0


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="Address the model server binds (default: %(default)s)."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="REST port of the service: the transformer's if there is one, else the "
        "predictor's (default: a free port, printed at start).",
    )
    parser.add_argument(
        "--grpc-port", type=int, default=0, help="gRPC port (default: a free port)."
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="Where models are downloaded and cached (default: ~/.cache/kserve-stack/models).",
    )
    parser.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="Restarts after a crash, with backoff 1s, 2s, 4s... up to 30s, "
        "before giving up (default: %(default)s).",
    )
    parser.add_argument("--ready-timeout", type=float, default=120.0,
                        help="Seconds to wait for the model to answer before saying so "
                        "(default: %(default)s).")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kserve-stack", description="Run KServe InferenceServices on this machine.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="Serve the InferenceService of a YAML file locally.")
    run.add_argument("-f", "--file", required=True,
                     help="YAML with one InferenceService (and optionally ServingRuntimes); "
                     "- reads stdin.")  # fmt: skip
    _serve_flags(run)
    run.set_defaults(func=_run)
    quick = sub.add_parser("quickstart", help="Train a sample iris model and serve it.")
    _serve_flags(quick)
    quick.set_defaults(func=_quickstart)
    sample = sub.add_parser("sample-model", help="Write the sample iris model (model.joblib).")
    sample.add_argument("--out", type=Path, required=True, help="Directory to write into.")
    sample.set_defaults(func=_sample_model)
    runtimes = sub.add_parser("runtimes", help="List the built-in ClusterServingRuntimes.")
    runtimes.set_defaults(func=_runtimes)
    defaults = sub.add_parser(
        "config-defaults", help="Print the ConfigMap inferenceservice-config with defaults."
    )
    defaults.set_defaults(func=_config_defaults)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LocalModeError as err:
        print(f"kserve-stack: {err}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as err:
        print(f"kserve-stack: {err}", file=sys.stderr)
        return 2
