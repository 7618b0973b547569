"""Typed gRPC tensor contents (``InferTensorContents``) to numpy.

A protobuf repeated field read one value at a time costs tens of nanoseconds a value (8 ms for a
224x224x3 FP32 image), however fast the parser. Serialized, a float field is one packed record of
little-endian IEEE values, which numpy reads as it is: FP32 and FP64 tensors of ``BULK_FROM``
elements or more go that way. Integer and bool fields are varints, which numpy decodes no faster
than the per-value path (measured), so they keep it. One reader of those records
(:func:`parse_contents`) serves both protobuf's messages (serialized again) and the requests
that ``infer_wire`` parses, which carry their contents read already (:class:`WireContents`: a
float record as it lies in the message, integers as values). Writing contents: ``infer_wire``.
"""

from __future__ import annotations

from typing import Any, Final

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

_VARINT: Final = 0
_LENGTH_DELIMITED: Final = 2
#: The element size of each packed float field of InferTensorContents.
_FLOAT_SIZE: Final = {FIELD_NUMBER["FP32"]: 4, FIELD_NUMBER["FP64"]: 8}
#: Its integer fields: bool_contents (1) to uint64_contents (5).
_FIRST_INT_FIELD: Final = FIELD_NUMBER["BOOL"]
_LAST_INT_FIELD: Final = FIELD_NUMBER["UINT64"]
#: Integer records longer than this are left to protobuf, which reads them faster.
_MAX_VARINT_RECORD: Final = 4096


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


NO_CONTENTS: Final = WireContents(0, b"")


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
    if count >= BULK_FROM and datatype in ("FP32", "FP64"):
        # Serialized, the field is one packed record (unless other fields are set as well):
        # read as the records of requests are, without protobuf's per-value path.
        serialized: bytes = contents.SerializeToString()
        try:
            wire = parse_contents(serialized, memoryview(serialized), 0, len(serialized))
        except UnusualRecordError:
            wire = NO_CONTENTS
        if wire.number == FIELD_NUMBER[datatype]:
            return _read_wire(wire, datatype, shape, count, name)
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


class UnusualRecordError(ValueError):
    """Records this reader does not take: malformed, or of a shape it leaves to protobuf."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` in ``buf`` and where it ends; UnusualRecordError if it runs past
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
    raise UnusualRecordError("a varint runs past its record or past 64 bits")


def read_field(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The record at ``pos``: its field number, where its length-delimited payload ends (-1 for
    a varint, which starts where the payload would) and where that starts. Records of other wire
    types are UnusualRecordError: no field read here has them."""
    tag, pos = read_varint(buf, pos, end)
    number, wire = tag >> 3, tag & 7
    if wire == _VARINT:
        return number, -1, pos
    if wire != _LENGTH_DELIMITED:
        raise UnusualRecordError(f"field {number} has wire type {wire}")
    length, pos = read_varint(buf, pos, end)
    if length > end - pos:
        raise UnusualRecordError(f"field {number} runs past its message")
    return number, pos + length, pos


def int64(value: int) -> int:
    """A varint's 64 bits as the value of an int64 field (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


def parse_contents(buf: bytes, view: memoryview, pos: int, end: int) -> WireContents:
    """The serialized InferTensorContents in ``buf[pos:end]`` (``view`` is ``buf``'s): none, or
    one packed record; any other shape is UnusualRecordError (protobuf joins repeated records,
    and reads unpacked values)."""
    if pos == end:
        return NO_CONTENTS
    number, stop, start = read_field(buf, pos, end)
    if stop != end:
        raise UnusualRecordError("contents of more than one record")
    size = _FLOAT_SIZE.get(number, 0)
    if size:
        if (stop - start) % size:
            raise UnusualRecordError("a float record that is not whole values")
        return WireContents(number, view[start:stop])
    if not _FIRST_INT_FIELD <= number <= _LAST_INT_FIELD or stop - start > _MAX_VARINT_RECORD:
        raise UnusualRecordError(f"contents in field {number}")
    values: list[int] = []
    while start < stop:
        value, start = read_varint(buf, start, stop)
        values.append(value)
    return WireContents(number, b"", _as_field_type(number, values))


def _as_field_type(number: int, values: list[int]) -> list[int]:
    """Varints as protobuf reads them into each integer field (it truncates, as C casts do)."""
    if number == 1:  # bool
        return [int(v != 0) for v in values]
    if number == 2:  # int32: the low 32 bits, signed
        return [(v & 0xFFFFFFFF) - (1 << 32) if v & 0x80000000 else v & 0xFFFFFFFF for v in values]
    if number == 3:
        return [int64(v) for v in values]
    if number == 4:  # uint32
        return [v & 0xFFFFFFFF for v in values]
    return values  # uint64
