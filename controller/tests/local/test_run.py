"""The local mode for real: `kserve-stack run` trains nothing, fetches the model with the
storage initializer, starts the runtime process and answers /v1/models/<name>:predict."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from io import StringIO
from pathlib import Path

import pytest
from kserve_stack_controller.cli import main
from kserve_stack_controller.local.plan import ProcessSpec
from kserve_stack_controller.local.sample_model import write_sample_model
from kserve_stack_controller.local.supervisor import Backoff, Supervisor

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, payload: object) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_run_serves_predictions_and_stops_on_sigterm(tmp_path: Path) -> None:
    if not (BIN / "kserve-stack-runtime").exists():
        pytest.skip("kserve-stack-runtimes is not installed in this environment")
    model_dir = tmp_path / "model"
    write_sample_model(model_dir)
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(f"""
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris-local
spec:
  predictor:
    sklearn:
      storageUri: file://{model_dir}
""")
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "kserve-stack"), "run", "-f", str(manifest), "--port", str(port),
         "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1/models/iris-local:predict"
        deadline = time.monotonic() + 90
        answer: dict[str, object] | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = _post(url, {"instances": [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]})
                break
            except OSError:
                time.sleep(0.5)
        assert answer == {"predictions": [1, 0]}, answer
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "[kserve-stack] runtime ClusterServingRuntime/kserve-sklearnserver" in out
    assert "[iris-local] " in out  # the runtime's lines, prefixed
    assert "stopped iris-local" in out
    assert (tmp_path / "cache" / "services" / "iris-local").exists()


def test_supervisor_restarts_with_backoff_then_gives_up(tmp_path: Path) -> None:
    out = StringIO()
    spec = ProcessSpec("crasher", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
                       {}, 0, "crasher")  # fmt: skip
    started = time.monotonic()
    code = Supervisor(spec, Backoff(initial=0.1, maximum=0.2, max_restarts=2), out).run()
    text = out.getvalue()
    assert code == 1
    assert text.count("[crasher] boom") == 3
    assert "restart 1/2 in 0s" in text and "gave up after 2 restarts" in text
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n", "serving.kserve.io"),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {model: {modelFormat: {name: onnx}}}}\n",
            "NoSupportingRuntime",
        ),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {minReplicas: 3, maxReplicas: 1, sklearn: {}}}\n",
            "spec.predictor.minReplicas",
        ),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {containers: [{name: c, image: 'example.com/x:1'}]}}\n",
            "cannot run locally",
        ),
    ],
    ids=["not-ours", "no-runtime", "invalid", "foreign-image"],
)
def test_run_refuses_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             manifest: str, message: str) -> None:  # fmt: skip
    path = tmp_path / "m.yaml"
    path.write_text(manifest)
    assert main(["run", "-f", str(path), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kserve-stack: ") and message in err


def test_runtimes_and_config_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runtimes"]) == 0
    listed = capsys.readouterr().out
    for name in ("kserve-sklearnserver", "kserve-xgbserver", "kserve-lgbserver"):
        assert name in listed
    assert main(["config-defaults"]) == 0
    assert "kserveIngressGateway" in capsys.readouterr().out
