"""The local mode for real: `kserve-stack run` trains nothing, fetches the model with the
storage initializer, starts the runtime process (and the transformer's) and answers
/v1/models/<name>:predict."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path
from typing import IO

import pytest
import yaml
from kserve_stack_controller.cli import main
from kserve_stack_controller.local.plan import (
    LocalModeError,
    ProcessSpec,
    local_processes,
    plan_local,
)
from kserve_stack_controller.local.sample_model import write_sample_model
from kserve_stack_controller.local.supervisor import Backoff, Supervisor, supervise

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[3]
TRANSFORMER_SAMPLE = (
    REPO / "docs" / "samples" / "inferenceservice" / "sklearn-iris-transformer.yaml"
)


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
    assert "[iris-local-predictor] " in out  # the runtime's lines, prefixed
    assert "stopped iris-local-predictor" in out
    assert (tmp_path / "cache" / "services" / "iris-local").exists()


class Output:
    """The lines a running `kserve-stack` prints, collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = list(re.finditer(pattern, self.text))
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} (x{count}) in:\n{self.text}")


def test_run_serves_through_the_transformer_and_supervises_both(tmp_path: Path) -> None:
    if not (BIN / "kserve-stack-runtime").exists():
        pytest.skip("kserve-stack-runtimes is not installed in this environment")
    model_dir = tmp_path / "model"
    write_sample_model(model_dir)
    doc = yaml.safe_load(TRANSFORMER_SAMPLE.read_text())
    doc["spec"]["predictor"]["model"]["storageUri"] = f"file://{model_dir}"  # no download
    manifest = tmp_path / "isvc.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "kserve-stack"), "run", "-f", str(manifest), "--port", str(port),
         "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO,  # the sample names docs/runtimes/custom_model.py from the repository root
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = Output(proc)
    url = f"http://127.0.0.1:{port}/v1/models/iris-millimetres:predict"
    millimetres = {"instances": [[68, 28, 48, 14], [51, 35, 14, 2]]}
    try:
        output.wait_for(re.escape(f"[kserve-stack] ready: POST {url}"))
        # Class names: only the transformer makes them, from the predictor's class numbers.
        assert _post(url, millimetres) == {"predictions": ["versicolor", "setosa"]}
        behind = output.wait_for(r"iris-millimetres-predictor at http://127.0.0.1:(\d+) ")
        assert int(behind[1]) != port
        assert f"--predictor_host 127.0.0.1:{behind[1]} " in output.text  # as the cluster gives

        # The predictor dies: reported, the transformer answers 502 meanwhile, restarted.
        pid = int(output.wait_for(r"started iris-millimetres-predictor \(pid (\d+)\)")[1])
        os.kill(pid, signal.SIGKILL)
        output.wait_for(r"iris-millimetres-predictor exited with -9; restart 1/5 in 1s")
        with pytest.raises(urllib.error.HTTPError) as answer:
            _post(url, millimetres)
        with answer.value as error:
            assert error.code == 502
            assert "unreachable" in json.loads(error.read())["error"]
        output.wait_for(r"iris-millimetres-predictor ready at", count=2)
        assert _post(url, millimetres) == {"predictions": ["versicolor", "setosa"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        output.thread.join(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0, output.text
    for component in ("predictor", "transformer"):
        assert f"[iris-millimetres-{component}] " in output.text
        assert f"[kserve-stack] stopped iris-millimetres-{component}" in output.text


def test_supervise_stops_the_others_when_one_gives_up() -> None:
    out = StringIO()
    stopping = threading.Event()
    backoff = Backoff(initial=0.1, maximum=0.1, max_restarts=1)
    crash = ProcessSpec("crasher", [sys.executable, "-c", "raise SystemExit(3)"], {}, 0, "crasher")
    sleep = ProcessSpec("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {}, 0,
                        "sleeper")  # fmt: skip
    crasher = Supervisor(crash, backoff, out, stopping=stopping)
    sleeper = Supervisor(sleep, backoff, out, stopping=stopping)
    started = time.monotonic()
    assert supervise([sleeper, crasher]) == 1
    text = out.getvalue()
    assert "crasher exited with 3; gave up after 1 restarts" in text
    assert "stopping sleeper: crasher is down" in text and "stopped sleeper" in text
    assert sleeper.process is not None and sleeper.process.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 30
    assert signal.getsignal(signal.SIGTERM) is not sleeper.stop  # handlers given back


def _transformer_manifest(container: dict[str, object]) -> list[dict[str, object]]:
    return [{
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "t"},
        "spec": {"predictor": {"sklearn": {"storageUri": "pvc://models/iris"}},
                 "transformer": {"containers": [{"name": "kserve-container", **container}]}},
    }]  # fmt: skip


def test_transformer_gets_the_cluster_args_with_local_addresses(tmp_path: Path) -> None:
    if not (BIN / "kserve-stack-runtime").exists():
        pytest.skip("kserve-stack-runtimes is not installed in this environment")
    local = plan_local(_transformer_manifest({
        "image": "kserve-stack/runtimes:0.1.0",  # entrypoint: kserve-stack-runtime
        "args": ["custom", "--predictor_host=t-predictor.elsewhere:80"],
    }))  # fmt: skip
    assert local.entry == "transformer" and local.storage_uri == "pvc://models/iris"
    predictor, transformer = local_processes(
        local, tmp_path, "0.0.0.0", {"predictor": (1001, 1002), "transformer": (2001, 2002)}
    )
    assert predictor.name == "t-predictor" and predictor.http_port == 1001
    assert f"--model_dir={tmp_path}" in predictor.argv and "--http_port=1001" in predictor.argv
    # What the controller gives a transformer (--model_name, --predictor_host, --http_port),
    # with the local predictor and ports in place of the cluster's.
    assert transformer.argv == [
        str(BIN / "kserve-stack-runtime"), "custom", "--predictor_host=127.0.0.1:1001",
        "--model_name", "t", "--http_port", "2001", "--grpc_port=2002", "--host=0.0.0.0",
    ]  # fmt: skip
    assert (transformer.name, transformer.http_port, transformer.model_name) == (
        "t-transformer",
        2001,
        "t",
    )


def test_transformer_module_found_with_the_container_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "my_transformer.py").write_text("")
    container = {"image": "example.com/my-transformer:1",
                 "command": ["python3", "-m", "my_transformer"]}  # fmt: skip
    with pytest.raises(LocalModeError, match="'my_transformer' is not importable"):
        plan_local(_transformer_manifest(container))
    container["env"] = [{"name": "PYTHONPATH", "value": str(tmp_path)}]
    local = plan_local(_transformer_manifest(container))
    assert local.components[-1].argv[:3] == [sys.executable, "-m", "my_transformer"]
    assert local.components[-1].env == {"PYTHONPATH": str(tmp_path)}


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
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {sklearn: {}}, transformer: {containers: [{name: kserve-container, "
            "image: 'example.com/image-transformer:latest'}]}}\n",
            "spec.transformer: image 'example.com/image-transformer:latest' cannot run locally",
        ),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {sklearn: {}}, transformer: {containers: [{name: kserve-container, "
            "image: 'example.com/t:1', command: [python, -m, no_such_transformer]}]}}\n",
            "spec.transformer: module 'no_such_transformer' is not importable",
        ),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {sklearn: {}}, transformer: {containers: [{name: kserve-container, "
            "image: 'example.com/t:1', command: [no-such-transformer]}]}}\n",
            "spec.transformer: 'no-such-transformer' is not installed here",
        ),
        (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\n"
            "spec: {predictor: {sklearn: {}}, explainer: {containers: [{name: kserve-container, "
            "image: 'example.com/e:1', command: [kserve-stack-runtime]}]}}\n",
            "does not run spec.explainer",
        ),
    ],
    ids=[
        "not-ours",
        "no-runtime",
        "invalid",
        "foreign-image",
        "foreign-transformer",
        "transformer-module-missing",
        "transformer-program-missing",
        "explainer",
    ],
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
