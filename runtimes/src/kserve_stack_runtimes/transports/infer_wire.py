"""ModelInfer's request and answer in protobuf's wire format, without protobuf's messages.

Why: reading and building upb messages (a wrapper object per field read, descriptor lookups by
name) was the part of a ModelInfer that REST does not have, and at concurrency 1, where every
call starts on cold caches, it also slowed the model's own ``predict`` after it (measured with
``make bench-runtimes-incall``). Parse, decode and encode of the benchmark's call: 5.8 us here,
8.2 through upb.

* :func:`parse_infer_request` reads the requests that clients send (names, datatypes, shapes,
  typed contents in one packed record each, raw contents, requested outputs by name) into plain
  objects with the attributes of a ``ModelInferRequest`` that the service reads. Anything else
  (parameters, bytes contents, unknown or repeated-message fields, malformed bytes) makes it
  return None, and the caller parses the message with protobuf: what this accepts is read
  exactly as protobuf reads it (tests compare the two on generated and damaged messages).
* :func:`encode_infer_response` writes the whole ``ModelInferResponse``, every field; large
  integer tensors and unusual data go through protobuf's own conversions.

Compiled by mypyc in wheels (runtimes/setup.py), like the rest of the gRPC hot path.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from kserve_stack_runtimes.protocol import v2
from kserve_stack_runtimes.transports.contents import (
    CONTENTS_FIELD,
    FIELD_NUMBER,
    MalformedRecordError,
    WireContents,
    read_varint,
)

_VARINT: Final = 0
_LENGTH_DELIMITED: Final = 2
_UINT64: Final = (1 << 64) - 1
_NO_CONTENTS: Final = WireContents(0, b"")
#: The element size of each packed float field of InferTensorContents.
_FLOAT_SIZE: Final = {FIELD_NUMBER["FP32"]: 4, FIELD_NUMBER["FP64"]: 8}
#: Its integer fields: bool_contents (1) to uint64_contents (5).
_FIRST_INT_FIELD: Final = FIELD_NUMBER["BOOL"]
_LAST_INT_FIELD: Final = FIELD_NUMBER["UINT64"]
#: Integer records longer than this are left to protobuf, which reads them faster.
_MAX_VARINT_RECORD: Final = 4096
#: Integer tensors from this many elements are written by protobuf, which does it faster.
_WRITE_INTS_UP_TO: Final = 64
#: Every byte value as a bytes object (what most varints and all tags here are).
_BYTE: Final = [bytes((i,)) for i in range(256)]
#: The range each integer field of InferTensorContents takes (bool_contents: 0 and 1).
_INT_RANGE: Final = {
    "int_contents": (-(1 << 31), (1 << 31) - 1),
    "int64_contents": (-(1 << 63), (1 << 63) - 1),
    "uint_contents": (0, (1 << 32) - 1),
    "uint64_contents": (0, _UINT64),
    "bool_contents": (0, 1),
}
#: The array kinds whose values go into each integer field as they are.
_INT_KINDS: Final = {"BOOL": "b"} | {t: "iu" for t in v2.DATATYPES if t[0] in "IU"}


class UnusualMessageError(MalformedRecordError):
    """A message this parser leaves to protobuf's (malformed records are, too)."""


class WireTensor:
    """An input tensor as the service reads it (``ModelInferRequest.InferInputTensor``)."""

    def __init__(self) -> None:
        self.name = ""
        self.datatype = ""
        self.shape: list[int] = []
        self.contents = _NO_CONTENTS
        self.parameters: dict[str, Any] | None = None


class WireOutput:
    """A requested output (``ModelInferRequest.InferRequestedOutputTensor``), by name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parameters: dict[str, Any] | None = None


class WireInferRequest:
    """The fields of a ``ModelInferRequest`` that the service reads."""

    def __init__(self) -> None:
        self.model_name = ""
        self.model_version = ""
        self.id = ""
        self.parameters: dict[str, Any] | None = None
        self.inputs: list[WireTensor] = []
        self.outputs: list[WireOutput] = []
        self.raw_input_contents: list[memoryview] = []


def parse_infer_request(message: bytes) -> WireInferRequest | None:
    """The request in ``message``, or None where protobuf is to parse it (see the module)."""
    try:
        return _request(message)
    except MalformedRecordError:  # UnusualMessageError too
        return None


def _field(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The field number of the record at ``pos``, where its length-delimited payload ends, and
    where it starts; every field this parser reads is length-delimited but shape's values."""
    tag, pos = read_varint(buf, pos, end)
    number, wire = tag >> 3, tag & 7
    if wire == _VARINT:
        return number, -1, pos
    if wire != _LENGTH_DELIMITED:
        raise UnusualMessageError
    length, pos = read_varint(buf, pos, end)
    if length > end - pos:
        raise UnusualMessageError
    return number, pos + length, pos


def _text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode()
    except UnicodeDecodeError:  # protobuf refuses it: let it say so
        raise UnusualMessageError from None


def _request(buf: bytes) -> WireInferRequest:
    req = WireInferRequest()
    view = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        number, stop, start = _field(buf, pos, end)
        if stop < 0:
            raise UnusualMessageError
        if number == 1:
            req.model_name = _text(buf, start, stop)
        elif number == 2:
            req.model_version = _text(buf, start, stop)
        elif number == 3:
            req.id = _text(buf, start, stop)
        elif number == 5:
            req.inputs.append(_input(buf, view, start, stop))
        elif number == 6:
            req.outputs.append(_output(buf, start, stop))
        elif number == 7:
            req.raw_input_contents.append(view[start:stop])
        else:  # parameters, or a field this service does not know
            raise UnusualMessageError
        pos = stop
    return req


def _input(buf: bytes, view: memoryview, pos: int, end: int) -> WireTensor:
    tensor = WireTensor()
    contents_seen = False
    while pos < end:
        number, stop, start = _field(buf, pos, end)
        if number == 3:  # shape: packed int64 values, or one unpacked
            if stop < 0:
                value, pos = read_varint(buf, start, end)
                tensor.shape.append(value - (1 << 64) if value >> 63 else value)
                continue
            while start < stop:
                value, start = read_varint(buf, start, stop)
                tensor.shape.append(value - (1 << 64) if value >> 63 else value)
        elif stop < 0:
            raise UnusualMessageError
        elif number == 1:
            tensor.name = _text(buf, start, stop)
        elif number == 2:
            tensor.datatype = _text(buf, start, stop)
        elif number == 5 and not contents_seen:  # protobuf merges a repeated one: it parses
            contents_seen = True
            tensor.contents = _contents(buf, view, start, stop)
        else:
            raise UnusualMessageError
        pos = stop
    return tensor


def _contents(buf: bytes, view: memoryview, pos: int, end: int) -> WireContents:
    """Contents of one packed record (or none); any other contents are protobuf's."""
    if pos == end:
        return _NO_CONTENTS
    number, stop, start = _field(buf, pos, end)
    if stop != end:  # another record follows (protobuf joins them), or a single unpacked value
        raise UnusualMessageError
    size = _FLOAT_SIZE.get(number, 0)
    if size:
        if (stop - start) % size:
            raise UnusualMessageError
        return WireContents(number, view[start:stop])
    if not _FIRST_INT_FIELD <= number <= _LAST_INT_FIELD or stop - start > _MAX_VARINT_RECORD:
        raise UnusualMessageError
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
    if number == 3:  # int64
        return [v - (1 << 64) if v >> 63 else v for v in values]
    if number == 4:  # uint32
        return [v & 0xFFFFFFFF for v in values]
    return values  # uint64


def _output(buf: bytes, pos: int, end: int) -> WireOutput:
    name = ""
    while pos < end:
        number, stop, start = _field(buf, pos, end)
        if number != 1 or stop < 0:
            raise UnusualMessageError
        name = _text(buf, start, stop)
        pos = stop
    return WireOutput(name)


# -- the answer -----------------------------------------------------------------------------------
def varint(value: int) -> bytes:
    """``value`` (0 <= value < 2**64) as a protobuf varint."""
    if value < 0x80:
        return _BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _record(number: int, payload: bytes) -> bytes:
    """A length-delimited field (number < 16: its tag is one byte)."""
    return _BYTE[number << 3 | _LENGTH_DELIMITED] + varint(len(payload)) + payload


def _string(parts: list[bytes], number: int, value: str) -> None:
    if value:  # proto3 leaves empty strings out
        parts.append(_record(number, value.encode()))


def _signed(value: int) -> int:
    """An int64 as the varint protobuf writes for it (negative: ten bytes, two's complement)."""
    if value < 0:
        if value < -(1 << 63):
            raise ValueError(f"Value out of range: {value}")
        return value + (1 << 64)
    if value >= 1 << 63:
        raise ValueError(f"Value out of range: {value}")
    return value


def _parameters(parts: list[bytes], number: int, parameters: dict[str, Any]) -> None:
    """A ``map<string, InferParameter>``; values typed as the service's other answers type them."""
    for key, value in parameters.items():
        if isinstance(value, bool):
            param = b"\x08\x01" if value else b"\x08\x00"
        elif isinstance(value, int):
            param = b"\x10" + varint(_signed(value))
        elif isinstance(value, float):
            param = b"\x21" + struct.pack("<d", value)
        else:  # written even when empty: it is the oneof's choice
            param = _record(3, str(value).encode())
        entry = (_record(1, key.encode()) if key else b"") + _record(2, param)
        parts.append(_record(number, entry))


def contents_record(data: Any, datatype: str) -> bytes:
    """``data`` as a serialized ``InferTensorContents`` of ``datatype`` (FP16: raw only)."""
    flat = data.reshape(-1)
    size: int = flat.size
    if not size:
        return b""
    number = FIELD_NUMBER[datatype]
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in flat:
            element: bytes = item if isinstance(item, bytes) else str(item).encode()
            parts.append(_record(number, element))
        return b"".join(parts)
    kind: str = flat.dtype.kind
    if kind == "f" and datatype in ("FP32", "FP64"):
        return _record(number, flat.astype(v2.DATATYPES[datatype], copy=False).tobytes())
    field = CONTENTS_FIELD[datatype]
    if size <= _WRITE_INTS_UP_TO and kind in _INT_KINDS.get(datatype, ""):
        low, high = _INT_RANGE[field]
        packed: list[bytes] = []
        for value in flat.tolist():
            if value < low or value > high:
                raise ValueError(f"Value out of range: {value}")
            packed.append(varint(value + (1 << 64) if value < 0 else value))
        return _record(number, b"".join(packed))
    # Large integer tensors, and other data in a typed field (integers as floats, floats or
    # objects as integers: protobuf converts them, or refuses them, value by value). Imported
    # here, not above: the module is also used (and tested) beside Triton's client, whose module
    # defines the same messages.
    from kserve_stack_runtimes._generated import grpc_predict_v2_pb2 as pb  # noqa: PLC0415

    message = pb.InferTensorContents()
    getattr(message, field).extend(flat.tolist())
    serialized: bytes = message.SerializeToString()
    return serialized


def encode_infer_response(response: v2.InferResponse, request: v2.InferRequest, raw: bool) -> bytes:
    """The serialized ``ModelInferResponse`` of ``response`` (raw contents when ``raw``)."""
    parts: list[bytes] = []
    _string(parts, 1, response.model_name)
    _string(parts, 2, response.model_version or "")
    _string(parts, 3, response.id or "")
    if response.parameters:
        _parameters(parts, 4, response.parameters)
    raws: list[bytes] = []
    for tensor in v2.select_outputs(response, request):
        entry: list[bytes] = []
        _string(entry, 1, tensor.name)
        _string(entry, 2, tensor.datatype)
        if tensor.shape:
            entry.append(_record(3, b"".join([varint(_signed(int(d))) for d in tensor.shape])))
        if tensor.parameters:
            _parameters(entry, 4, tensor.parameters)
        if raw or tensor.datatype == "FP16":
            raws.append(_record(6, v2.encode_raw(tensor.data, tensor.datatype)))
        else:  # present even when empty, as protobuf's message had it
            entry.append(_record(5, contents_record(tensor.data, tensor.datatype)))
        parts.append(_record(5, b"".join(entry)))
    parts += raws
    return b"".join(parts)
