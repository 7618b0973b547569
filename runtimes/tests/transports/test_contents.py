"""Typed gRPC tensor contents to and from numpy: the bulk float path agrees with protobuf's own
per-value reading, and ``infer_wire``'s contents with protobuf's writing, for every size around
the threshold and for odd messages."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.transports import contents
from kserve_stack_runtimes.transports.contents import (
    BULK_FROM,
    CONTENTS_FIELD,
    WireContents,
    read_contents,
)
from kserve_stack_runtimes.transports.infer_wire import contents_record, varint

# Triton's client registers the same proto file in protobuf's default pool as our generated
# module does (one definition per process), so these tests build messages with its module.
from tritonclient.grpc import service_pb2 as pb

PROTO = Path(__file__).parents[2] / "proto" / "grpc_predict_v2.proto"
FLOATS = {"FP32": np.float32, "FP64": np.float64}
SIZES = st.one_of(st.integers(0, 3 * BULK_FROM), st.sampled_from([1000, 65_537]))


def _bits(a: np.ndarray) -> np.ndarray:
    """Values compared bit for bit: NaN payloads, infinities and -0.0 included."""
    return a.view(np.uint32 if a.dtype.itemsize == 4 else np.uint64)


def _reference(datatype: str, values: np.ndarray) -> pb.InferTensorContents:
    ref = pb.InferTensorContents()
    getattr(ref, CONTENTS_FIELD[datatype]).extend(values.tolist())
    return ref


def test_field_numbers_are_the_protos() -> None:
    text = PROTO.read_text()
    for datatype, number in contents.FIELD_NUMBER.items():
        field = CONTENTS_FIELD[datatype]
        assert re.search(rf"repeated \w+ {field} = {number};", text), field
        assert pb.InferTensorContents.DESCRIPTOR.fields_by_name[field].number == number


@settings(max_examples=60, deadline=None)
@given(data=st.data(), datatype=st.sampled_from(sorted(FLOATS)), size=SIZES)
def test_floats_round_trip_like_protobuf(data: st.DataObject, datatype: str, size: int) -> None:
    dtype = FLOATS[datatype]
    values = data.draw(hnp.arrays(dtype, size, elements=hnp.from_dtype(np.dtype(dtype))))
    wire = contents_record(values, datatype)
    assert wire == _reference(datatype, values).SerializeToString()
    parsed = pb.InferTensorContents.FromString(wire)
    with mock.patch.object(contents.np, "fromiter", wraps=np.fromiter) as per_value:
        got = read_contents(parsed, datatype, [size], size, "x")
    assert per_value.called == (size < BULK_FROM)  # the bulk path from the threshold on
    assert got.dtype == np.dtype(dtype)
    assert got.flags.aligned
    assert np.array_equal(_bits(got), _bits(values))


@pytest.mark.parametrize("datatype", sorted(FLOATS))
def test_float_data_of_another_width_is_converted(datatype: str) -> None:
    other = np.float64 if datatype == "FP32" else np.float32
    values = np.linspace(-3, 3, 4 * BULK_FROM, dtype=other).reshape(4, BULK_FROM)
    expected = values.reshape(-1).astype(FLOATS[datatype])
    assert contents_record(values, datatype) == _reference(datatype, expected).SerializeToString()


@pytest.mark.parametrize("size", [BULK_FROM - 1, BULK_FROM, 5 * BULK_FROM])
def test_other_fields_and_unpacked_or_split_encodings(size: int) -> None:
    values = np.arange(size, dtype=np.float32) / 7
    # A client may send a repeated field unpacked, or packed in several records; protobuf
    # merges them, and other (mismatched) fields set as well are ignored.
    unpacked = b"".join(b"\x35" + struct.pack("<f", v) for v in values[: size // 2])
    second = values[size // 2 :].tobytes()
    wire = (
        b"\x12\x02\x01\x02"  # int_contents [1, 2]
        + unpacked
        + b"\x32"
        + varint(len(second))
        + second
        + b"\x42\x01a"  # bytes_contents ["a"]
        + b"\xf8\x01\x05"  # an unknown field (31, varint)
    )
    parsed = pb.InferTensorContents.FromString(wire)
    got = read_contents(parsed, "FP32", [size], size, "x")
    assert np.array_equal(got, values)


def _parse(message: bytes) -> contents.WireContents | None:
    try:
        return contents.parse_contents(message, memoryview(message), 0, len(message))
    except contents.UnusualRecordError:
        return None


@settings(max_examples=300, deadline=None)
@given(message=st.binary(max_size=64))
def test_contents_record_reader_never_raises(message: bytes) -> None:
    found = _parse(message)  # anything but UnusualRecordError would fail the test
    assert found is None or len(found.payload) <= len(message)


def test_contents_record_reader_takes_only_a_single_packed_record() -> None:
    record = b"\x32\x04abcd"
    found = _parse(record)
    assert found is not None and found.number == 6 and bytes(found.payload) == b"abcd"
    # Other fields beside it: protobuf's per-value path reads them (test above).
    assert _parse(b"\x08\x01" + record) is None
    assert _parse(record + record) is None  # two records
    assert _parse(b"\x35abcd") is None  # the field as fixed32, unpacked
    assert _parse(b"\x32\x09abcd") is None  # runs past the end
    assert _parse(b"\x08") is None  # a varint cut short
    assert _parse(b"\x32\x03abc") is None  # not a whole number of floats


def test_count_mismatch_and_raw_only_datatype_are_clear_errors() -> None:
    msg = pb.InferTensorContents()
    msg.fp32_contents.extend([1.0] * (BULK_FROM + 1))
    with pytest.raises(InvalidInputError, match=r"shape \[2, 33\] holds 66 elements but"):
        read_contents(msg, "FP32", [2, 33], 66, "x")
    with pytest.raises(InvalidInputError, match="FP16 data must be sent raw"):
        read_contents(msg, "FP16", [1], 1, "x")


def test_integers_keep_their_range_checks() -> None:
    msg = pb.InferTensorContents()
    msg.int_contents.extend([1, 300] * BULK_FROM)
    with pytest.raises(InvalidInputError, match="out of range for INT8"):
        read_contents(msg, "INT8", [2 * BULK_FROM], 2 * BULK_FROM, "x")
    got = read_contents(msg, "INT16", [2 * BULK_FROM], 2 * BULK_FROM, "x")
    assert got.dtype == np.int16 and got.tolist() == [1, 300] * BULK_FROM


def test_bulk_read_does_not_follow_later_edits() -> None:
    msg = pb.InferTensorContents()
    msg.fp64_contents.extend(range(4 * BULK_FROM))
    got = read_contents(msg, "FP64", [4 * BULK_FROM], 4 * BULK_FROM, "x")
    msg.fp64_contents[0] = -1.0
    assert got[0] == 0.0


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_wire_contents_are_read_aligned_and_checked(offset: int) -> None:
    values = np.arange(6, dtype=np.float32) / 3
    payload = memoryview(b"x" * offset + values.tobytes())[offset:]
    got = read_contents(WireContents(6, payload), "FP32", [2, 3], 6, "x")
    assert got.flags.aligned and np.array_equal(got, values)
    with pytest.raises(InvalidInputError, match=r"holds 4 elements but contents have 6"):
        read_contents(WireContents(6, payload), "FP32", [4], 4, "x")
    # Float contents of the other width are the other field: this datatype's field is empty.
    with pytest.raises(InvalidInputError, match=r"holds 6 elements but contents have 0"):
        read_contents(WireContents(7, payload), "FP32", [6], 6, "x")
    assert read_contents(WireContents(0, b""), "INT64", [0], 0, "x").dtype == np.int64


def test_wire_integer_contents_keep_their_range_checks() -> None:
    got = read_contents(WireContents(3, b"", [1, -2]), "INT64", [2], 2, "x")
    assert got.dtype == np.int64 and got.tolist() == [1, -2]
    with pytest.raises(InvalidInputError, match="out of range for INT8"):
        read_contents(WireContents(2, b"", [1, 300]), "INT8", [2], 2, "x")
    with pytest.raises(InvalidInputError, match=r"holds 3 elements but contents have 2"):
        read_contents(WireContents(2, b"", [1, 3]), "INT32", [3], 3, "x")
