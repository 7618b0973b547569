"""Acceptance: Triton's HTTP client and KServe's own Python client against our server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from runtimes_support import SAMPLE, SAMPLE_CLASSES, ServerProcess

pytestmark = pytest.mark.data_plane

REPO = Path(__file__).resolve().parents[3]
KSERVE_PYTHON = REPO / ".bench" / "kserve-venv" / "bin" / "python"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_triton_http_client(sklearn_server: ServerProcess, binary: bool) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{sklearn_server.http_port}")
    assert client.is_server_ready() and client.is_model_ready("iris")
    x = httpclient.InferInput("input-0", [2, 4], "FP32")
    x.set_data_from_numpy(np.asarray(SAMPLE, dtype=np.float32), binary_data=binary)
    out = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = client.infer("iris", [x], outputs=[out])
    assert result.as_numpy("output-0").tolist() == SAMPLE_CLASSES


def test_triton_clients_repository_load_and_unload(sklearn_server: ServerProcess) -> None:
    # tritonclient sends unload_dependents with every unload; load overrides (config, files)
    # cannot be honoured here and are refused with a message, not silently dropped.
    http = httpclient.InferenceServerClient(f"127.0.0.1:{sklearn_server.http_port}")
    grpc_ = grpcclient.InferenceServerClient(sklearn_server.grpc_target)
    ready = f"{sklearn_server.url}/v2/models/iris/ready"
    for client, error in ((http, httpclient.InferenceServerException),
                          (grpc_, grpcclient.InferenceServerException)):  # fmt: skip
        client.unload_model("iris")
        assert httpx.get(ready).status_code != 200
        client.load_model("iris")
        assert client.is_model_ready("iris")
        with pytest.raises(error) as info:
            client.load_model("iris", config='{"backend": "onnxruntime"}')
        assert "config" in info.value.message() and "not supported" in info.value.message()
        assert client.is_model_ready("iris")  # a refused load leaves the model as it was
    r = httpx.post(f"{sklearn_server.url}/v2/repository/models/iris/load", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


KSERVE_SCRIPT = """
import asyncio, sys
import httpx
import numpy as np
from kserve import InferenceRESTClient, InferRequest, InferInput, RESTConfig
from kserve.inference_client import InferenceGRPCClient

async def main(http, grpc_target):
    x = np.asarray([[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0]], dtype=np.float32)
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    inp = InferInput(name="input-0", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    req = InferRequest(model_name="iris", infer_inputs=[inp])
    res = await client.infer(http, req, model_name="iris")
    print("rest-v2", res.outputs[0].as_numpy().tolist())
    v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
    res = await v1.infer(http, {"instances": x.tolist()}, model_name="iris")
    print("rest-v1", res["predictions"])
    await client.close(); await v1.close()
    g = InferenceGRPCClient(grpc_target)
    inp = InferInput(name="input-0", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x)
    res = await g.infer(InferRequest(model_name="iris", infer_inputs=[inp]))
    print("grpc-v2", res.outputs[0].as_numpy().tolist())
    await g.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_kserve_python_client(sklearn_server: ServerProcess) -> None:
    if not KSERVE_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KSERVE_PYTHON} is missing: CI must run `make kserve-venv` first")
        pytest.skip(f"{KSERVE_PYTHON} is missing: run `make kserve-venv`")
    run = subprocess.run(
        [str(KSERVE_PYTHON), "-c", KSERVE_SCRIPT, sklearn_server.url, sklearn_server.grpc_target],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    expected = str(SAMPLE_CLASSES)
    assert lines == {"rest-v2": expected, "rest-v1": expected, "grpc-v2": expected}, run.stdout
