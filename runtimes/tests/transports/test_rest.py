"""REST V1 and V2 against a real sklearn model server on 127.0.0.1."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest
from runtimes_support import SAMPLE, SAMPLE_CLASSES, ServerProcess

pytestmark = pytest.mark.data_plane


def test_v1_list_status_predict(sklearn_server: ServerProcess) -> None:
    url = sklearn_server.url
    assert httpx.get(f"{url}/v1/models").json() == {"models": ["iris"]}
    assert httpx.get(f"{url}/v1/models/iris").json() == {"name": "iris", "ready": True}
    r = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": SAMPLE})
    assert r.status_code == 200
    assert r.json() == {"predictions": SAMPLE_CLASSES}


def test_v2_health_metadata_infer(sklearn_server: ServerProcess) -> None:
    url = sklearn_server.url
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{url}/v2").json()
    assert meta["name"] == "kserve-stack" and "binary_tensor_data" in meta["extensions"]
    assert httpx.get(f"{url}/v2/models/iris").json()["platform"] == "sklearn"
    assert httpx.get(f"{url}/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    body = {
        "id": "abc",
        "inputs": [
            {"name": "x", "shape": [2, 4], "datatype": "FP32", "data": np.ravel(SAMPLE).tolist()}
        ],
    }
    for path in ("/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"):
        r = httpx.post(url + path, json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["id"] == "abc" and doc["model_name"] == "iris"
        assert doc["outputs"][0]["data"] == SAMPLE_CLASSES


def test_v2_binary_extension_in_and_out(sklearn_server: ServerProcess) -> None:
    raw = np.asarray(SAMPLE, dtype=np.float32).tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}],
        }
    )
    r = httpx.post(
        f"{sklearn_server.url}/v2/models/iris/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    doc = orjson.loads(r.content[:n])
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == 16
    assert np.frombuffer(r.content[n:], np.int64).tolist() == SAMPLE_CLASSES


def test_request_id_is_echoed_or_made(sklearn_server: ServerProcess) -> None:
    r = httpx.post(
        f"{sklearn_server.url}/v1/models/iris:predict",
        json={"instances": SAMPLE},
        headers={"x-request-id": "req-123"},
    )
    assert r.headers["x-request-id"] == "req-123"
    made = httpx.get(f"{sklearn_server.url}/v2/health/live").headers["x-request-id"]
    assert len(made) == 32


V2 = "/v2/models/iris/infer"
BAD = [
    ("malformed-json", "POST", V2, b'{"inputs": [', {}, 400),
    (
        "wrong-shape",
        "POST",
        V2,
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1] * 6}]}
        ),
        {},
        400,
    ),
    (
        "shape-data-disagree",
        "POST",
        V2,
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1] * 7}]}
        ),
        {},
        400,
    ),
    (
        "unknown-datatype",
        "POST",
        V2,
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "COMPLEX", "data": [1] * 4}]}
        ),
        {},
        400,
    ),
    ("bad-header-length", "POST", V2, b"{}", {"Inference-Header-Content-Length": "abc"}, 400),
    ("v1-not-object", "POST", "/v1/models/iris:predict", b"[1]", {}, 400),
    (
        "v1-strings",
        "POST",
        "/v1/models/iris:predict",
        b'{"instances": [["a","b","c","d"]]}',
        {},
        400,
    ),
    ("v1-ragged", "POST", "/v1/models/iris:predict", b'{"instances": [[1,2],[3]]}', {}, 400),
    ("oversize", "POST", V2, b"x" * 200_000, {}, 413),
    ("unknown-model-v2", "POST", "/v2/models/nope/infer", b"{}", {}, 404),
    ("unknown-model-v1", "POST", "/v1/models/nope:predict", b"{}", {}, 404),
    ("unknown-model-meta", "GET", "/v2/models/nope", b"", {}, 404),
    ("unknown-path", "GET", "/v3/whatever", b"", {}, 404),
    ("wrong-method", "GET", V2, b"", {}, 405),
    (
        "explain-not-implemented",
        "POST",
        "/v1/models/iris:explain",
        b'{"instances": [[1,2,3,4]]}',
        {},
        501,
    ),
]


@pytest.mark.parametrize("case", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_requests_get_json_errors_and_server_keeps_serving(
    sklearn_server: ServerProcess, case: tuple[str, str, bytes, dict[str, str], int]
) -> None:
    method, path, body, headers, status = case
    r = httpx.request(method, sklearn_server.url + path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    assert "Traceback" not in r.text
    ok = httpx.post(f"{sklearn_server.url}/v1/models/iris:predict", json={"instances": SAMPLE})
    assert ok.status_code == 200


def test_repository_unload_then_load(sklearn_server: ServerProcess) -> None:
    url = sklearn_server.url
    index = httpx.post(f"{url}/v2/repository/index").json()
    assert index == [{"name": "iris", "state": "READY", "reason": ""}]
    assert httpx.post(f"{url}/v2/repository/models/iris/unload").status_code == 200
    r = httpx.post(f"{url}/v2/models/iris/infer", json={"inputs": []})
    assert r.status_code == 404
    assert httpx.get(f"{url}/v2/health/ready").status_code == 503
    assert httpx.post(f"{url}/v2/repository/models/other/load").status_code == 404
    assert httpx.post(f"{url}/v2/repository/models/iris/load").status_code == 200
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    r = httpx.post(f"{url}/v1/models/iris:predict", json={"instances": SAMPLE})
    assert r.json() == {"predictions": SAMPLE_CLASSES}


def test_metrics_count_requests_and_stages(sklearn_server: ServerProcess) -> None:
    url = sklearn_server.url
    httpx.post(f"{url}/v1/models/iris:predict", json={"instances": SAMPLE})
    httpx.post(f"{url}/v1/models/iris:predict", json={"instances": [[1, 2]]})
    text = httpx.get(f"{url}/metrics").text
    assert 'kserve_stack_requests_total{model="iris",protocol="v1",status="200"}' in text
    assert 'kserve_stack_requests_total{model="iris",protocol="v1",status="400"}' in text
    assert 'request_predict_seconds_count{model_name="iris"}' in text
    assert 'request_preprocess_seconds_count{model_name="iris"}' in text
    assert 'kserve_stack_inflight_requests{protocol="v1"} 0.0' in text


def test_openapi_published(sklearn_server: ServerProcess) -> None:
    spec = httpx.get(f"{sklearn_server.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v2/models/{name}/infer" in spec["paths"]
    assert "/v1/models/{name}:predict" in spec["paths"]
