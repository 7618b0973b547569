"""ModelInfer's wire codec against protobuf's own: what ``parse_infer_request`` accepts it reads
as protobuf does (and what it leaves, protobuf parses); what ``encode_infer_response`` writes,
protobuf reads back as the message protobuf would have built."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kserve_stack_runtimes.protocol import v2
from kserve_stack_runtimes.transports.contents import CONTENTS_FIELD
from kserve_stack_runtimes.transports.infer_wire import (
    WireInferRequest,
    contents_record,
    encode_infer_response,
    parse_infer_request,
    varint,
)

# Triton's client registers the same proto file in protobuf's default pool as our generated
# module does (one definition per process), so these tests build messages with its module.
from tritonclient.grpc import service_pb2 as pb

TEXT = st.text(max_size=12)
DATATYPES = sorted(v2.DATATYPES)
FIELDS = {
    1: "bool_contents",
    2: "int_contents",
    3: "int64_contents",
    4: "uint_contents",
    5: "uint64_contents",
    6: "fp32_contents",
    7: "fp64_contents",
}
INTEGERS = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1),
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
}


def _set_param(target: pb.InferParameter, value: object) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = str(value)


@st.composite
def requests(draw: st.DrawFn) -> pb.ModelInferRequest:
    """ModelInferRequests as clients send them, and with the fields the parser leaves."""
    msg = pb.ModelInferRequest(model_name=draw(TEXT), model_version=draw(TEXT), id=draw(TEXT))
    for _ in range(draw(st.integers(0, 3))):
        t = msg.inputs.add(name=draw(TEXT), datatype=draw(st.sampled_from(DATATYPES)))
        t.shape.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4)))
        kind = draw(st.sampled_from(["none", "fp32", "fp64", "bytes", "params", *INTEGERS]))
        if kind == "fp32":
            t.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=40)))
        elif kind == "fp64":
            t.contents.fp64_contents.extend(draw(st.lists(st.floats(), max_size=40)))
        elif kind in INTEGERS:
            values = draw(st.lists(INTEGERS[kind], max_size=8))
            getattr(t.contents, kind).extend(values)
        elif kind == "bytes":
            t.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=5), max_size=3)))
        elif kind == "params":
            _set_param(t.parameters["k"], draw(st.integers(-5, 5)))
    for _ in range(draw(st.integers(0, 2))):
        o = msg.outputs.add(name=draw(TEXT))
        if draw(st.booleans()) and draw(st.booleans()):
            o.parameters["binary_data"].bool_param = True
    for _ in range(draw(st.integers(0, 2))):
        msg.raw_input_contents.append(draw(st.binary(max_size=16)))
    if draw(st.booleans()) and draw(st.booleans()):
        _set_param(msg.parameters["priority"], 1)
    return msg


def _assert_read_as_protobuf_reads(wire: WireInferRequest, msg: pb.ModelInferRequest) -> None:
    assert (wire.model_name, wire.model_version, wire.id) == (
        msg.model_name,
        msg.model_version,
        msg.id,
    )
    assert not msg.parameters and wire.parameters is None
    assert len(wire.inputs) == len(msg.inputs)
    for w, m in zip(wire.inputs, msg.inputs, strict=True):
        assert (w.name, w.datatype, w.shape) == (m.name, m.datatype, list(m.shape))
        assert not m.parameters and w.parameters is None
        if w.contents.number == 0:
            assert m.contents.ByteSize() == 0
            continue
        field = FIELDS[w.contents.number]
        assert [f.name for f, _ in m.contents.ListFields()] == [field]
        if w.contents.values is not None:
            assert w.contents.values == list(getattr(m.contents, field))
        else:  # one packed float record, which protobuf writes back as it came
            record = m.contents.SerializeToString()
            assert record.endswith(bytes(w.contents.payload))
            assert len(record) - len(w.contents.payload) <= 4  # tag and length only
    assert [(o.name, o.parameters) for o in wire.outputs] == [
        (o.name, None) for o in msg.outputs if not o.parameters
    ]
    assert len(wire.outputs) == len(msg.outputs)
    assert [bytes(r) for r in wire.raw_input_contents] == list(msg.raw_input_contents)


@settings(max_examples=300, deadline=None)
@given(msg=requests())
def test_requests_are_read_as_protobuf_reads_them(msg: pb.ModelInferRequest) -> None:
    wire = parse_infer_request(msg.SerializeToString())
    uses_other_fields = (
        bool(msg.parameters)
        or any(t.parameters or t.contents.bytes_contents for t in msg.inputs)
        or any(o.parameters for o in msg.outputs)
    )
    if uses_other_fields:
        assert wire is None  # left to protobuf
    else:
        assert wire is not None
        _assert_read_as_protobuf_reads(wire, msg)


@settings(max_examples=500, deadline=None)
@given(msg=requests(), seed=st.integers(0, 2**32), cut=st.integers(0, 8))
def test_damaged_requests_never_raise_and_are_never_misread(
    msg: pb.ModelInferRequest, seed: int, cut: int
) -> None:
    data = bytearray(msg.SerializeToString())
    rng = random.Random(seed)
    for _ in range(rng.randint(1, 3)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    damaged = bytes(data[: len(data) - cut] if cut < len(data) else data)
    wire = parse_infer_request(damaged)
    if wire is not None:  # accepted: protobuf accepts it too, and reads the same
        _assert_read_as_protobuf_reads(wire, pb.ModelInferRequest.FromString(damaged))


def test_what_clients_send_is_read_without_protobuf() -> None:
    msg = pb.ModelInferRequest(model_name="iris", id="a")
    t = msg.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
    t.contents.fp32_contents.extend([5.0, 3.4, 1.5, 0.2])
    msg.outputs.add(name="output-0")
    wire = parse_infer_request(msg.SerializeToString())
    assert wire is not None
    assert np.frombuffer(wire.inputs[0].contents.payload, "<f4").tolist() == list(
        t.contents.fp32_contents
    )
    raw = pb.ModelInferRequest(model_name="iris")  # Triton's client: raw contents
    raw.inputs.add(name="x", datatype="INT64", shape=[2])
    raw.raw_input_contents.append(np.array([1, -2], "<i8").tobytes())
    wire = parse_infer_request(raw.SerializeToString())
    assert wire is not None
    assert np.frombuffer(wire.raw_input_contents[0], "<i8").tolist() == [1, -2]


@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])  # bool_contents to uint64_contents
def test_integer_varints_are_truncated_as_protobuf_truncates_them(number: int) -> None:
    values = [0, 1, 5, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**40 + 7, 2**63, 2**64 - 1]
    record = b"".join(varint(v) for v in values)
    contents = bytes([number << 3 | 2]) + varint(len(record)) + record
    message = b"\x2a" + varint(len(contents) + 2) + b"\x2a" + varint(len(contents)) + contents
    wire = parse_infer_request(message)
    assert wire is not None
    expected = getattr(pb.ModelInferRequest.FromString(message).inputs[0].contents, FIELDS[number])
    assert wire.inputs[0].contents.values == list(expected)


@pytest.mark.parametrize(
    "message",
    [
        b"\x22\x00",  # parameters (field 4)
        b"\x08\x01",  # model_name as a varint: not how protobuf reads it
        b"\x0a\x02\xff\xfe",  # model_name that is not UTF-8: protobuf refuses the message
        b"\x2a\x04\x2a\x00\x2a\x00",  # an input with its contents twice (protobuf merges)
        b"\x2a\x04\x2a\x02\x08\x01",  # contents with one unpacked bool
        b"\x2a\x03\x2a\x01\x42",  # contents with bytes_contents, cut short
        b"\x2a\x04\x2a\x02\x32\x03",  # a packed FP32 record running past its end
        b"\x2a\x05\x2a\x03\x32\x01\x00",  # FP32 contents not a whole number of floats
        # FP32 contents in two packed records (protobuf joins them)
        b"\x2a\x0e\x2a\x0c\x32\x04\x00\x00\x80\x3f\x32\x04\x00\x00\x00\x40",
        b"\x52\x00",  # field 10: unknown here
        b"\x0a\x05ab",  # cut short
    ],
)
def test_unusual_requests_are_left_to_protobuf(message: bytes) -> None:
    assert parse_infer_request(message) is None


def _reference_response(
    response: v2.InferResponse, request: v2.InferRequest, raw: bool
) -> pb.ModelInferResponse:
    """The message protobuf builds for ``response`` (what the service sent before infer_wire)."""
    msg = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    for k, val in (response.parameters or {}).items():
        _set_param(msg.parameters[k], val)
    for tensor in v2.select_outputs(response, request):
        out = msg.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        for k, val in (tensor.parameters or {}).items():
            _set_param(out.parameters[k], val)
        if raw or tensor.datatype == "FP16":
            msg.raw_output_contents.append(v2.encode_raw(tensor.data, tensor.datatype))
        else:
            flat = tensor.data.reshape(-1)
            if tensor.datatype == "BYTES":
                values = [x if isinstance(x, bytes) else str(x).encode() for x in flat]
            else:
                values = flat.tolist()
            getattr(out.contents, CONTENTS_FIELD[tensor.datatype]).extend(values)
    return msg


@st.composite
def tensors(draw: st.DrawFn) -> v2.InferTensor:
    datatype = draw(st.sampled_from(DATATYPES))
    shape = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    if datatype == "BYTES":
        data = np.array(
            draw(
                st.lists(
                    st.binary(max_size=4), min_size=math.prod(shape), max_size=math.prod(shape)
                )
            ),
            dtype=object,
        ).reshape(shape)
    else:
        data = draw(hnp.arrays(v2.DATATYPES[datatype], shape))
    params = draw(
        st.one_of(
            st.none(),
            st.dictionaries(
                TEXT,
                st.one_of(
                    st.booleans(),
                    st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False),
                    TEXT,
                ),
                max_size=2,
            ),
        )
    )
    return v2.InferTensor(draw(TEXT), data, datatype, shape, params)


@settings(max_examples=300, deadline=None)
@given(outputs=st.lists(tensors(), max_size=3), raw=st.booleans(), name=TEXT, rid=TEXT)
def test_answers_are_the_messages_protobuf_builds(
    outputs: list[v2.InferTensor], raw: bool, name: str, rid: str
) -> None:
    response = v2.InferResponse(name, outputs, id=rid or None, parameters={"n": 1, "s": "x"})
    request = v2.InferRequest(name, [])
    wire = encode_infer_response(response, request, raw)
    reference = _reference_response(response, request, raw)
    assert pb.ModelInferResponse.FromString(wire) == reference


def test_answers_without_parameters_are_protobufs_bytes() -> None:
    outputs = [
        v2.InferTensor("a", np.array([[1], [-2]], np.int64)),
        v2.InferTensor("b", np.linspace(0, 1, 40, dtype=np.float32)),
        v2.InferTensor("c", np.array([True, False])),
        v2.InferTensor("d", np.array([b"x", "y"], dtype=object), "BYTES"),
    ]
    response = v2.InferResponse("iris", outputs, id="req-1", model_version="2")
    request = v2.InferRequest("iris", [])
    for raw in (False, True):
        expected = _reference_response(response, request, raw).SerializeToString()
        assert encode_infer_response(response, request, raw) == expected


def test_requested_outputs_are_chosen_and_unknown_ones_refused() -> None:
    response = v2.InferResponse(
        "m", [v2.InferTensor("a", np.zeros(1)), v2.InferTensor("b", np.ones(1))]
    )
    request = v2.InferRequest("m", [], outputs=[v2.RequestedOutput("b")])
    got = pb.ModelInferResponse.FromString(encode_infer_response(response, request, False))
    assert [o.name for o in got.outputs] == ["b"] and list(
        got.outputs[0].contents.fp64_contents
    ) == [1.0]
    with pytest.raises(v2.InvalidInputError, match="'c' was requested"):
        encode_infer_response(
            response, v2.InferRequest("m", [], outputs=[v2.RequestedOutput("c")]), False
        )


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("INT32", np.array([2**40])),  # beyond the int32 field
        ("UINT64", np.array([-1])),
        ("INT64", np.array([2**63], np.uint64)),
    ],
)
def test_integers_out_of_their_fields_range_fail_as_protobuf_does(
    datatype: str, data: np.ndarray
) -> None:
    reference = pb.InferTensorContents()
    with pytest.raises(ValueError, match="out of range"):
        getattr(reference, CONTENTS_FIELD[datatype]).extend(data.tolist())
    with pytest.raises(ValueError, match="out of range"):
        contents_record(data, datatype)


def test_parameters_are_typed_as_protobufs() -> None:
    params = {"b": True, "i": -3, "f": 0.5, "s": "", "o": [1]}
    response = v2.InferResponse("m", [], parameters=params)
    got = pb.ModelInferResponse.FromString(
        encode_infer_response(response, v2.InferRequest("m", []), False)
    )
    assert {k: v.WhichOneof("parameter_choice") for k, v in got.parameters.items()} == {
        "b": "bool_param",
        "i": "int64_param",
        "f": "double_param",
        "s": "string_param",
        "o": "string_param",
    }
    assert got.parameters["i"].int64_param == -3 and got.parameters["o"].string_param == "[1]"
    assert struct.pack("<d", got.parameters["f"].double_param) == struct.pack("<d", 0.5)
