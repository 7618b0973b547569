"""Typed gRPC tensor contents (``InferTensorContents``) to numpy.

A protobuf repeated field read one value at a time costs tens of nanoseconds a value (8 ms for a
224x224x3 FP32 image), however fast the parser. Serialized, a float field is one packed record of
little-endian IEEE values, which numpy reads as it is: FP32 and FP64 tensors of ``BULK_FROM``
elements or more go that way. Integer and bool fields are varints, which numpy decodes no faster
than the per-value path (measured), so they keep it. Requests that ``infer_wire`` parsed carry
their contents read already (:class:`WireContents`: a float record as it lies in the message,
integers as values). Writing contents: ``infer_wire``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol.v2 import DATATYPES, array_view

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
#: Those fields' numbers (runtimes/proto/grpc_predict_v2.proto). The functions take any
#: module's messages of that proto, Triton's client's as well as ours.
_NUMBER_OF_FIELD = {
    "bool_contents": 1,
    "int_contents": 2,
    "int64_contents": 3,
    "uint_contents": 4,
    "uint64_contents": 5,
    "fp32_contents": 6,
    "fp64_contents": 7,
    "bytes_contents": 8,
}
FIELD_NUMBER = {datatype: _NUMBER_OF_FIELD[field] for datatype, field in CONTENTS_FIELD.items()}

#: Elements from which a float tensor is converted in bulk (below it numpy's fixed costs lose).
BULK_FROM = 32

_LENGTH_DELIMITED = 2


class WireContents:
    """Contents as ``infer_wire`` found them: one packed record of field ``number`` (0: none),
    a float field's as its elements' bytes, an integer field's as the values protobuf reads."""

    __slots__ = ("number", "payload", "values")

    def __init__(
        self, number: int, payload: bytes | memoryview, values: list[int] | None = None
    ) -> None:
        self.number = number
        self.payload = payload
        self.values = values


def read_contents(
    contents: Any, datatype: str, shape: list[int], count: int, name: str
) -> np.ndarray[Any, Any]:
    """The flat array of the ``count`` elements (``shape``) that ``contents`` carries for
    ``datatype``; InvalidInputError when they are not there or do not fit it."""
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInputError(f"Input {name!r}: {datatype} data must be sent raw.")
    if isinstance(contents, WireContents):
        return _read_wire(contents, datatype, shape, count, name)
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
    if count >= BULK_FROM and datatype in ("FP32", "FP64"):
        packed = _packed_record(contents.SerializeToString(), FIELD_NUMBER[datatype])
        if packed is not None and len(packed) == count * dtype.itemsize:
            return array_view(packed, dtype)
    return _from_values(values, datatype, count, name)


def _read_wire(
    contents: WireContents, datatype: str, shape: list[int], count: int, name: str
) -> np.ndarray[Any, Any]:
    dtype = DATATYPES[datatype]
    values = contents.values
    if contents.number != FIELD_NUMBER[datatype]:  # the field of this datatype is empty
        have = 0
    elif values is None:
        have = len(contents.payload) // dtype.itemsize
    else:
        have = len(values)
    if have != count:
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} holds {count} elements but contents have {have}."
        )
    if not count:
        return np.empty(0, dtype)
    if values is None:
        return array_view(contents.payload, dtype)
    return _from_values(values, datatype, count, name)


def _from_values(values: Any, datatype: str, count: int, name: str) -> np.ndarray[Any, Any]:
    try:
        return np.fromiter(values, DATATYPES[datatype], count)
    except OverflowError:
        raise InvalidInputError(
            f"Input {name!r}: a value is out of range for {datatype}."
        ) from None


class MalformedRecordError(ValueError):
    """Bytes that are not the protobuf records they should be."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` in ``buf`` and where it ends; MalformedRecordError if it runs past
    ``end`` or past 64 bits."""
    if pos < end and buf[pos] < 0x80:  # most tags and lengths: one byte
        return buf[pos], pos + 1
    value = 0
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift == 63 and pos < end and buf[pos] > 1:  # a tenth byte past 64 bits
            break
    raise MalformedRecordError("a varint runs past its record or past 64 bits")


def _packed_record(message: bytes, field_number: int) -> memoryview | None:
    """The payload of field ``field_number`` in a serialized message, or None unless the field
    is there as exactly one length-delimited (packed) record: the caller then reads per value.
    """
    end = len(message)
    pos = 0
    start = stop = -1
    try:
        while pos < end:
            tag, pos = read_varint(message, pos, end)
            number, wire = tag >> 3, tag & 7
            if wire == _LENGTH_DELIMITED:
                length, pos = read_varint(message, pos, end)
                if number == field_number:
                    if start >= 0:
                        return None
                    start, stop = pos, pos + length
                pos += length
            elif number == field_number:
                return None
            elif wire == 0:
                _, pos = read_varint(message, pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                return None
    except MalformedRecordError:
        return None
    if pos != end or start < 0:
        return None
    return memoryview(message)[start:stop]
