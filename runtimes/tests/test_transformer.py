"""Transformer mode: a transformer process forwards to a real predictor over v1, v2 and grpc-v2."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from runtimes_support import SAMPLE, ServerProcess

pytestmark = pytest.mark.data_plane

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtimes" / "custom_model.py"
CLASSES = ["setosa", "virginica"]


@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc-v2"])
def test_transformer_forwards_to_predictor(
    sklearn_dir: Path, start_server: Callable[..., ServerProcess], protocol: str
) -> None:
    predictor = start_server(["sklearn", "--model_name=iris", f"--model_dir={sklearn_dir}"])
    host = predictor.grpc_target if protocol == "grpc-v2" else f"127.0.0.1:{predictor.http_port}"
    transformer = start_server(
        [
            "custom",
            "--model_name=iris",
            f"--model_class={DOCS}:CentimetresToMillimetres",
            f"--predictor_host={host}",
            f"--predictor_protocol={protocol}",
            "--enable_grpc=false",
        ]
    )
    millimetres = (np.asarray(SAMPLE) * 10).tolist()
    if protocol == "v1":
        r = httpx.post(
            f"{transformer.url}/v1/models/iris:predict",
            json={"instances": millimetres},
            headers={"x-request-id": "t-1"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": CLASSES}
        assert r.headers["x-request-id"] == "t-1"
        # The request id travelled to the predictor (whose log is flushed every 100 ms).
        deadline = time.monotonic() + 5
        while "t-1" not in predictor.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "t-1" in predictor.logs()
    else:
        r = httpx.post(
            f"{transformer.url}/v2/models/iris/infer",
            json={
                "inputs": [
                    {
                        "name": "x",
                        "shape": [2, 4],
                        "datatype": "FP64",
                        "data": np.ravel(millimetres).tolist(),
                    }
                ]
            },
        )
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["datatype"] == "BYTES" and out["data"] == CLASSES
    # a predictor-side 400 comes back as a 400 with the predictor's message
    bad = httpx.post(f"{transformer.url}/v1/models/iris:predict", json={"instances": [[1, 2]]})
    assert bad.status_code == 400, bad.text
    assert "features" in bad.json()["error"]


def test_transformer_with_unreachable_predictor_is_502(
    start_server: Callable[..., ServerProcess],
) -> None:
    transformer = start_server(
        ["custom", "--model_name=iris", "--predictor_host=127.0.0.1:9", "--enable_grpc=false"]
    )
    r = httpx.post(f"{transformer.url}/v1/models/iris:predict", json={"instances": SAMPLE})
    assert r.status_code == 502
    assert "unreachable" in r.json()["error"]


MALFORMED = """
import numpy as np
from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.protocol.v2 import InferTensor

class Malformed(Model):
    def predict(self, payload, headers):
        return [InferTensor("o", np.zeros(3, np.float32), "FP32", shape=[5])]
"""


def test_malformed_grpc_answer_of_the_predictor_is_502(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    (tmp_path / "malformed.py").write_text(MALFORMED)
    predictor = start_server(
        ["custom", "--model_name=m", f"--model_class={tmp_path}/malformed.py:Malformed"]
    )
    transformer = start_server(
        [
            "custom",
            "--model_name=m",
            f"--predictor_host={predictor.grpc_target}",
            "--predictor_protocol=grpc-v2",
            "--enable_grpc=false",
        ]
    )
    tensor = {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}
    r = httpx.post(f"{transformer.url}/v2/models/m/infer", json={"inputs": [tensor]})
    # The predictor's answer is at fault, not the client's request: a 502 that names it.
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert predictor.grpc_target in error and "malformed tensor" in error
