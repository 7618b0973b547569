"""Typed gRPC tensor contents (``InferTensorContents``) to and from numpy.

A protobuf repeated field read or filled one value at a time costs tens of nanoseconds a value
(8 ms for a 224x224x3 FP32 image), however fast the parser. Serialized, a float field is one
packed record of little-endian IEEE values, which numpy reads and writes as it is: FP32 and FP64
tensors of ``BULK_FROM`` elements or more go that way. Integer and bool fields are varints, which
numpy decodes no faster than the per-value path (measured), so they keep it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol.v2 import DATATYPES

#: Which field of InferTensorContents carries each datatype (FP16 travels raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

#: Elements from which a float tensor is converted in bulk (below it numpy's fixed costs lose).
BULK_FROM = 32

_LENGTH_DELIMITED = 2
#: The float fields' numbers in InferTensorContents (runtimes/proto/grpc_predict_v2.proto; the
#: functions take any module's messages of that proto, Triton's client's as well as ours).
_FIELD_NUMBER = {"FP32": 6, "FP64": 7}
#: Their records' tags: field number and wire type, one varint byte each.
_TAG = {datatype: bytes([n << 3 | _LENGTH_DELIMITED]) for datatype, n in _FIELD_NUMBER.items()}


def read_contents(
    contents: Any, datatype: str, shape: list[int], count: int, name: str
) -> np.ndarray[Any, Any]:
    """The flat array of the ``count`` elements (``shape``) that ``contents`` carries for
    ``datatype``; InvalidInputError when they are not there or do not fit it."""
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInputError(f"Input {name!r}: {datatype} data must be sent raw.")
    values = getattr(contents, field)
    if len(values) != count:
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} holds {count} elements but contents have {len(values)}."
        )
    if datatype == "BYTES":
        data = np.empty(count, dtype=object)
        data[:] = values[:]
        return data
    dtype = DATATYPES[datatype]
    if count >= BULK_FROM and datatype in _FIELD_NUMBER:
        packed = _packed_record(contents.SerializeToString(), _FIELD_NUMBER[datatype])
        if packed is not None and len(packed) == count * dtype.itemsize:
            return np.frombuffer(packed, dtype)
    try:
        return np.fromiter(values, dtype, count)
    except OverflowError:
        raise InvalidInputError(
            f"Input {name!r}: a value is out of range for {datatype}."
        ) from None


def write_contents(contents: Any, data: np.ndarray[Any, Any], datatype: str) -> None:
    """Fill the field of ``contents`` that carries ``datatype`` with ``data``'s elements."""
    field = CONTENTS_FIELD[datatype]
    flat = data.reshape(-1)
    if datatype == "BYTES":
        getattr(contents, field).extend(
            [x if isinstance(x, bytes) else str(x).encode() for x in flat]
        )
        return
    # Float data only: anything else keeps the per-value path's conversions (and its errors).
    if flat.size >= BULK_FROM and datatype in _TAG and flat.dtype.kind == "f":
        payload = flat.astype(DATATYPES[datatype], copy=False).tobytes()
        contents.MergeFromString(_TAG[datatype] + _varint(len(payload)) + payload)
        return
    getattr(contents, field).extend(flat.tolist())


def _packed_record(message: bytes, field_number: int) -> memoryview | None:
    """The payload of field ``field_number`` in a serialized message, or None unless the field
    is there as exactly one length-delimited (packed) record: the caller then reads per value.
    """
    view = memoryview(message)
    end = len(view)
    pos = 0
    found: memoryview | None = None
    try:
        while pos < end:
            tag, pos = _read_varint(view, pos)
            number, wire = tag >> 3, tag & 7
            if wire == _LENGTH_DELIMITED:
                length, pos = _read_varint(view, pos)
                if number == field_number:
                    if found is not None:
                        return None
                    found = view[pos : pos + length]
                pos += length
            elif number == field_number:
                return None
            elif wire == 0:
                _, pos = _read_varint(view, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return None
    except IndexError:  # a varint running past the end
        return None
    return found if pos == end else None


def _read_varint(view: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
