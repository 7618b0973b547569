"""The V2 tensor codec: every datatype, JSON and binary, and the errors of bad tensors."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol import v2

NUMERIC = [
    ("BOOL", [True, False, True, True], np.bool_),
    ("UINT8", [0, 1, 255, 7], np.uint8),
    ("UINT16", [0, 1, 65535, 7], np.uint16),
    ("UINT32", [0, 1, 2**32 - 1, 7], np.uint32),
    ("UINT64", [0, 1, 2**64 - 1, 7], np.uint64),
    ("INT8", [-128, 1, 127, 7], np.int8),
    ("INT16", [-32768, 1, 32767, 7], np.int16),
    ("INT32", [-(2**31), 1, 2**31 - 1, 7], np.int32),
    ("INT64", [-(2**63), 1, 2**63 - 1, 7], np.int64),
    ("FP16", [0.5, -1.0, 2.0, 1.5], np.float16),
    ("FP32", [0.5, -1.0, 2.25, 1.5], np.float32),
    ("FP64", [0.1, -1.0, 2.25, 1e300], np.float64),
]


def _body(datatype: str, shape: list[int], data: object, **extra: object) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}], **extra}
    )


@pytest.mark.parametrize(("datatype", "data", "dtype"), NUMERIC, ids=[n[0] for n in NUMERIC])
def test_json_round_trip_every_numeric_datatype(datatype: str, data: list, dtype: type) -> None:
    req = v2.decode_request(_body(datatype, [2, 2], data), "m")
    tensor = req.inputs[0]
    assert tensor.data.dtype == np.dtype(dtype)
    assert tensor.data.shape == (2, 2)
    assert tensor.data.reshape(-1).tolist() == np.array(data, dtype=dtype).tolist()
    body, header_len = v2.encode_response(v2.InferResponse("m", [tensor]))
    assert header_len is None
    out = orjson.loads(body)["outputs"][0]
    assert out["datatype"] == datatype and out["shape"] == [2, 2]
    assert out["data"] == np.array(data, dtype=dtype).tolist()


@pytest.mark.parametrize(("datatype", "data", "dtype"), NUMERIC, ids=[n[0] for n in NUMERIC])
def test_binary_round_trip_every_numeric_datatype(datatype: str, data: list, dtype: type) -> None:
    raw = np.array(data, dtype=dtype).tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [4],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    req = v2.decode_request(header + raw, "m", header_length=len(header))
    assert req.inputs[0].data.tolist() == np.array(data, dtype=dtype).tolist()
    body, header_len = v2.encode_response(v2.InferResponse("m", req.inputs), req)
    assert header_len is not None
    doc = orjson.loads(body[:header_len])
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == len(raw)
    assert "data" not in doc["outputs"][0]
    assert body[header_len:] == raw


def test_bytes_json_nested_and_binary() -> None:
    req = v2.decode_request(_body("BYTES", [2, 1], [["héllo"], ["wörld"]]), "m")
    assert req.inputs[0].data.reshape(-1).tolist() == ["héllo".encode(), "wörld".encode()]
    raw = v2.encode_raw(req.inputs[0].data, "BYTES")
    assert raw == struct.pack("<I", 6) + "héllo".encode() + struct.pack("<I", 6) + "wörld".encode()
    back = v2.decode_raw(raw, "BYTES", [2, 1], "x")
    assert back.reshape(-1).tolist() == req.inputs[0].data.reshape(-1).tolist()


def test_requested_binary_output_only_for_named_output() -> None:
    req = v2.decode_request(
        orjson.dumps(
            {
                "inputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [1, 2]}],
                "outputs": [{"name": "b", "parameters": {"binary_data": True}}, {"name": "a"}],
            }
        ),
        "m",
    )
    resp = v2.InferResponse(
        "m",
        [
            v2.InferTensor("a", np.array([1.5], np.float32)),
            v2.InferTensor("b", np.array([7], np.int64)),
        ],
    )
    body, header_len = v2.encode_response(resp, req)
    assert header_len is not None
    doc = orjson.loads(body[:header_len])
    assert [o["name"] for o in doc["outputs"]] == ["b", "a"]
    assert doc["outputs"][1]["data"] == [1.5]
    assert np.frombuffer(body[header_len:], np.int64).tolist() == [7]


BAD = [
    ("not-json", b"{nope", None, "Malformed JSON"),
    ("not-object", b"[1,2]", None, "JSON object"),
    ("no-inputs", b"{}", None, "'inputs'"),
    ("unknown-datatype", _body("FP8", [1], [1.0]), None, "unknown datatype"),
    ("shape-data-disagree", _body("FP32", [2, 2], [1.0, 2.0, 3.0]), None, "holds 4 elements"),
    ("negative-dim", _body("FP32", [-1], [1.0]), None, "non-negative"),
    ("shape-not-list", _body("FP32", "2", [1.0]), None, "'shape'"),
    ("ragged", _body("FP32", [2, 2], [[1.0, 2.0], [3.0]]), None, "regular array"),
    ("string-for-number", _body("INT32", [1], ["a"]), None, "does not fit"),
    ("float-for-int", _body("INT32", [1], [1.5]), None, "does not fit"),
    ("out-of-range", _body("UINT8", [1], [256]), None, "out of range"),
    ("negative-unsigned", _body("UINT32", [1], [-1]), None, "out of range"),
    ("number-for-bytes", _body("BYTES", [1], [1]), None, "strings"),
    ("number-for-bool", _body("BOOL", [1], [1]), None, "does not fit"),
    (
        "no-data",
        orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}),
        None,
        "neither",
    ),
    ("header-too-long", _body("FP32", [1], [1.0]), 10_000, "does not fit the body"),
    (
        "binary-size-mismatch",
        orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [2],
                        "parameters": {"binary_data_size": 4},
                    }
                ]
            }
        )
        + b"\0\0\0\0",
        -4,
        "needs 8 bytes",
    ),
    (
        "binary-trailing",
        orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [1],
                        "parameters": {"binary_data_size": 4},
                    }
                ]
            }
        )
        + b"\0" * 8,
        -8,
        "no input claims",
    ),
]


@pytest.mark.parametrize(
    ("body", "header", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_requests_are_invalid_input(body: bytes, header: int | None, message: str) -> None:
    if header is not None and header < 0:
        header = len(body) + header
    with pytest.raises(InvalidInputError, match=message):
        v2.decode_request(body, "m", header_length=header)


def test_unknown_requested_output_is_invalid() -> None:
    req = v2.decode_request(
        orjson.dumps(
            {
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}],
                "outputs": [{"name": "nope"}],
            }
        ),
        "m",
    )
    with pytest.raises(InvalidInputError, match="nope"):
        v2.encode_response(v2.InferResponse("m", [v2.InferTensor("y", np.zeros(1))]), req)


def test_request_encode_decode_round_trip() -> None:
    req = v2.InferRequest(
        "m",
        [
            v2.InferTensor("f", np.arange(6, dtype=np.float32).reshape(2, 3)),
            v2.InferTensor("s", np.array([b"a", b"bc"], dtype=object), "BYTES"),
        ],
        id="r1",
    )
    body, header_len = v2.encode_request(req)
    back = v2.decode_request(body, "m", header_length=header_len)
    assert back.id == "r1"
    assert back.inputs[0].data.tolist() == req.inputs[0].data.tolist()
    assert back.inputs[1].data.tolist() == [b"a", b"bc"]


def test_as_tensors_names_and_types() -> None:
    tensors = v2.as_tensors({"label": np.array(["x", "y"]), "p": [0.5, 0.5]})
    assert [(t.name, t.datatype) for t in tensors] == [("label", "BYTES"), ("p", "FP64")]
    assert tensors[0].data.tolist() == [b"x", b"y"]
