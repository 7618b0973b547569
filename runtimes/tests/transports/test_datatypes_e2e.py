"""Every V2 datatype end to end, through Triton's HTTP (JSON and binary) and gRPC clients."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from runtimes_support import ServerProcess

pytestmark = pytest.mark.data_plane

ECHO = """
from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.protocol.v2 import InferTensor

class Echo(Model):
    def predict(self, payload, headers):
        return [InferTensor("out_" + t.name, t.data, t.datatype) for t in payload.inputs]
"""

TENSORS = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 7, 255]], np.uint8),
    "UINT16": np.array([[0, 7, 65535]], np.uint16),
    "UINT32": np.array([[0, 7, 2**32 - 1]], np.uint32),
    "UINT64": np.array([[0, 7, 2**64 - 1]], np.uint64),
    "INT8": np.array([[-128, 0, 127]], np.int8),
    "INT16": np.array([[-32768, 0, 32767]], np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1]], np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1]], np.int64),
    "FP16": np.array([[0.5, -1.0, 2.0]], np.float16),
    "FP32": np.array([[0.5, -1.25, 3.0e38]], np.float32),
    "FP64": np.array([[0.1, -1.0, 1e300]], np.float64),
    "BYTES": np.array([[b"a", "é".encode(), b""]], dtype=object),
}


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    d = tmp_path_factory.mktemp("echo")
    (d / "echo.py").write_text(ECHO)
    server = ServerProcess(["custom", "--model_name=echo", f"--model_class={d}/echo.py:Echo"])
    server.wait_ready()
    yield server  # type: ignore[misc]
    server.stop()


def _check(result: object) -> None:
    for datatype, expected in TENSORS.items():
        got = result.as_numpy(f"out_{datatype}")  # type: ignore[attr-defined]
        assert got is not None, datatype
        assert got.shape == expected.shape, datatype
        values = got.tolist()
        if datatype == "BYTES":  # Triton's client hands JSON BYTES back as str
            values = [[v.encode() if isinstance(v, str) else v for v in row] for row in values]
        assert values == expected.tolist(), datatype


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_http_every_datatype(echo_server: ServerProcess, binary: bool) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{echo_server.http_port}")
    inputs, outputs = [], []
    for datatype, data in TENSORS.items():
        tensor = httpclient.InferInput(datatype, list(data.shape), datatype)
        # FP16 has no JSON form in Triton's client: it is always sent binary.
        tensor.set_data_from_numpy(data, binary_data=binary or datatype == "FP16")
        inputs.append(tensor)
        outputs.append(
            httpclient.InferRequestedOutput(
                f"out_{datatype}", binary_data=binary or datatype == "FP16"
            )
        )
    _check(client.infer("echo", inputs, outputs=outputs))


def test_grpc_every_datatype(echo_server: ServerProcess) -> None:
    client = grpcclient.InferenceServerClient(echo_server.grpc_target)
    inputs = []
    for datatype, data in TENSORS.items():
        tensor = grpcclient.InferInput(datatype, list(data.shape), datatype)
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
    _check(client.infer("echo", inputs))
