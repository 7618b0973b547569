"""The custom-model example of docs/runtimes runs as documented."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from runtimes_support import ServerProcess

pytestmark = pytest.mark.data_plane

DOCS = Path(__file__).resolve().parents[2] / "docs" / "runtimes" / "custom_model.py"


def test_custom_model_example(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(["custom", "--model_name=scaler", f"--model_class={DOCS}:Scaler"])
    r = httpx.post(
        f"{server.url}/v1/models/scaler:predict",
        json={"instances": [[1, 2], [3, 4]]},
        headers={"x-request-id": "doc-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "predictions": {"scaled": [[2.0, 4.0], [6.0, 8.0]], "request_id": ["doc-1"]}
    }
    r = httpx.post(
        f"{server.url}/v2/models/scaler/infer",
        json={"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [1, 2, 3]}]},
    )
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    assert outputs["scaled"]["data"] == [2.0, 4.0, 6.0]
    assert outputs["scaled"]["datatype"] == "FP64"
    assert outputs["request_id"]["datatype"] == "BYTES"
