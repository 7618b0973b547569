"""Process-level behaviour: graceful SIGTERM, several workers, the command line."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from kserve_stack_runtimes.cli import build_parser
from runtimes_support import SAMPLE, ServerProcess
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.data_plane

SLOW = """
import asyncio
from kserve_stack_runtimes.model import Model

class Slow(Model):
    async def predict(self, payload, headers):
        await asyncio.sleep(float(payload["instances"][0]))
        return [1]
"""


def test_sigterm_turns_readiness_off_drains_then_exits(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    server = start_server(["custom", "--model_name=slow", f"--model_class={tmp_path}/slow.py:Slow"])
    result: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        result["r"] = httpx.post(
            f"{server.url}/v1/models/slow:predict", json={"instances": [2.0]}, timeout=30
        )

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)  # the request is in flight
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert server.proc.poll() is None  # still draining
    thread.join(30)
    assert result["r"].status_code == 200 and result["r"].json() == {"predictions": [1]}
    assert server.proc.wait(20) == 0
    logs = server.logs()
    assert "readiness off, draining 1 in-flight" in logs and "drained" in logs


NEEDS_TASK = """
import asyncio
import numpy as np
from kserve_stack_runtimes.model import Model

class NeedsTask(Model):
    async def load(self):
        async with asyncio.timeout(5):  # refuses to run outside a task
            await asyncio.sleep(0)
        return True

    async def predict(self, payload, headers):
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        return np.array([1])
"""


def test_async_stages_run_in_a_task_on_rest_and_grpc(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # The transports run requests inline, without a task, until they first wait; code that
    # needs a current task (anyio under httpx, asyncio.timeout) must still get one.
    (tmp_path / "needs_task.py").write_text(NEEDS_TASK)
    server = start_server(
        ["custom", "--model_name=m", f"--model_class={tmp_path}/needs_task.py:NeedsTask"]
    )
    r = httpx.post(f"{server.url}/v1/models/m:predict", json={"instances": [[1.0]]})
    assert r.status_code == 200 and r.json() == {"predictions": [1]}, r.text
    assert httpx.post(f"{server.url}/v2/repository/models/m/load").status_code == 200
    client = grpcclient.InferenceServerClient(server.grpc_target)
    x = grpcclient.InferInput("x", [1, 1], "FP32")
    x.set_data_from_numpy(np.ones((1, 1), dtype=np.float32))
    assert client.infer("m", [x]).as_numpy("output-0").tolist() == [1]
    with grpc.insecure_channel(server.grpc_target) as channel:  # load() over gRPC too
        load = channel.unary_unary("/inference.GRPCInferenceService/RepositoryModelLoad")
        load(b"\n\x01m", timeout=10)  # RepositoryModelLoadRequest(model_name="m")
    assert "Traceback" not in server.logs()


def test_two_workers_share_the_port_and_sum_metrics(
    sklearn_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        ["sklearn", "--model_name=iris", f"--model_dir={sklearn_dir}", "--workers=2"]
    )
    for _ in range(20):
        r = httpx.post(
            f"{server.url}/v1/models/iris:predict",
            json={"instances": SAMPLE},
            headers={"connection": "close"},
        )
        assert r.status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("kserve_stack_requests_total{") and 'protocol="v1"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) == 20.0
    assert server.stop() == 0


SERVER_FLAGS = [
    "--model_name", "--model_dir", "--http_port", "--grpc_port", "--workers", "--max_threads",
    "--enable_grpc", "--predictor_host", "--predictor_protocol", "--max_asyncio_workers",
    "--enable_docs_url", "--log_config_file", "--configure_logging", "--access_log_format",
    "--enable_latency_logging",
]  # fmt: skip


@pytest.mark.parametrize(
    ("runtime", "extra"),
    [
        ("sklearn", ["--predict_proba"]),
        ("xgboost", ["--nthread"]),
        ("lightgbm", ["--nthread"]),
        ("custom", ["--model_class"]),
    ],
)
def test_help_explains_every_flag(runtime: str, extra: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"kserve_stack_runtimes.{runtime}", "--help"],
        capture_output=True, text=True, check=True, env={"COLUMNS": "200", "PATH": ""},
    ).stdout  # fmt: skip
    for flag in [*SERVER_FLAGS, *extra]:
        assert flag in out, flag
    # every option line carries a help text
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[runtime]._actions:
        assert action.help, action.option_strings


def test_bad_flag_values_are_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kserve_stack_runtimes.cli", "sklearn", "--workers=0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and "at least 1" in run.stderr
    run = subprocess.run(
        [
            sys.executable, "-m", "kserve_stack_runtimes.cli", "sklearn",
            "--model_dir=/nonexistent", "--http_port=0", "--enable_grpc=false",
        ],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0 and "does not exist" in run.stderr


def test_access_log_format_latency_logging_and_docs(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    server = start_server(
        [
            "custom",
            "--model_name=slow",
            f"--model_class={tmp_path}/slow.py:Slow",
            "--access_log_format=ACCESS %(method)s %(path)s %(status)s rid=%(request_id)s",
            "--enable_latency_logging=true",
            "--enable_docs_url=true",
        ]
    )
    r = httpx.post(
        f"{server.url}/v1/models/slow:predict",
        json={"instances": [0]},
        headers={"x-request-id": "log-1"},
    )
    assert r.status_code == 200
    assert "openapi.json" in httpx.get(f"{server.url}/docs").text
    time.sleep(0.3)  # log lines are flushed every 100 ms
    logs = server.logs()
    assert "ACCESS POST /v1/models/slow:predict 200 rid=log-1" in logs
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    time.sleep(0.3)
    assert "/v2/health/ready" not in server.logs()  # probes are logged at DEBUG only
    latency = next(line for line in logs.splitlines() if "latency: preprocess" in line)
    assert '"request_id":"log-1"' in latency


def test_grpc_calls_get_access_lines_like_rest_requests(
    sklearn_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(["sklearn", "--model_name=iris", f"--model_dir={sklearn_dir}"])
    client = grpcclient.InferenceServerClient(server.grpc_target)
    x = grpcclient.InferInput("input-0", [1, 4], "FP32")
    x.set_data_from_numpy(np.array(SAMPLE[:1], dtype=np.float32))
    client.infer("iris", [x], headers={"x-request-id": "grpc-1"})
    with pytest.raises(InferenceServerException):
        client.infer("nope", [x], headers={"x-request-id": "grpc-2"})
    assert client.is_server_live()  # a probe: logged at DEBUG only
    time.sleep(0.3)  # log lines are flushed every 100 ms
    lines = [
        json.loads(line)
        for line in server.logs().splitlines()
        if '"kserve_stack_runtimes.access"' in line
    ]
    grpc_lines = {line["request_id"]: line for line in lines if line["protocol"] == "grpc-v2"}
    assert grpc_lines["grpc-1"]["msg"] == "gRPC /inference.GRPCInferenceService/ModelInfer OK"
    assert grpc_lines["grpc-1"]["status"] == 200 and grpc_lines["grpc-1"]["model"] == "iris"
    assert grpc_lines["grpc-1"]["client"].startswith("127.0.0.1:")
    assert grpc_lines["grpc-1"]["duration_ms"] > 0
    assert grpc_lines["grpc-2"]["grpc_status"] == "NOT_FOUND"
    assert len(grpc_lines) == 2  # ServerLive is not among them
    assert httpx.post(f"{server.url}/v1/models/iris:predict", json={"instances": SAMPLE}).is_success
    time.sleep(0.3)
    rest = [line for line in server.logs().splitlines() if '"protocol":"v1"' in line]
    assert json.loads(rest[-1])["grpc_status"] == "-"


def test_access_log_format_applies_to_grpc_and_can_be_turned_off(
    sklearn_dir: Path, start_server: Callable[..., ServerProcess]
) -> None:
    fmt = "ACCESS %(method)s %(path)s %(status)s %(grpc_status)s rid=%(request_id)s"
    server = start_server(
        ["sklearn", "--model_name=iris", f"--model_dir={sklearn_dir}", f"--access_log_format={fmt}"]
    )
    client = grpcclient.InferenceServerClient(server.grpc_target)
    client.get_model_metadata("iris", headers={"x-request-id": "meta-1"})
    time.sleep(0.3)
    assert (
        "ACCESS POST /inference.GRPCInferenceService/ModelMetadata 200 OK rid=meta-1"
        in server.logs()
    )
    quiet = start_server(
        [
            "sklearn", "--model_name=iris", f"--model_dir={sklearn_dir}",
            "--enable_access_log=false",
        ]
    )  # fmt: skip
    grpcclient.InferenceServerClient(quiet.grpc_target).get_model_metadata("iris")
    httpx.get(f"{quiet.url}/v2/models/iris")
    time.sleep(0.3)
    assert "kserve_stack_runtimes.access" not in quiet.logs()


def test_log_config_file_is_used(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "logging.yaml").write_text(
        "version: 1\n"
        "formatters: {plain: {format: 'PLAIN %(name)s %(message)s'}}\n"
        "handlers: {err: {class: logging.StreamHandler, formatter: plain, stream: ext://sys.stderr}}\n"
        "root: {level: INFO, handlers: [err]}\n"
    )
    server = start_server(
        [
            "custom",
            "--model_name=slow",
            f"--model_class={tmp_path}/slow.py:Slow",
            f"--log_config_file={tmp_path}/logging.yaml",
        ]
    )
    assert "PLAIN kserve_stack_runtimes.server ready: serving models slow" in server.logs()
