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
    NO_CONTENTS,
    UnusualRecordError,
    int64,
    parse_contents,
    read_field,
    read_varint,
)

_LENGTH_DELIMITED: Final = 2
_UINT64: Final = (1 << 64) - 1
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


class WireTensor:
    """An input tensor as the service reads it (``ModelInferRequest.InferInputTensor``)."""

    def __init__(self) -> None:
        self.name = ""
        self.datatype = ""
        self.shape: list[int] = []
        self.contents = NO_CONTENTS
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
    except UnusualRecordError:
        return None


def _text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode()
    except UnicodeDecodeError:  # protobuf refuses it: let it say so
        raise UnusualRecordError("text that is not UTF-8") from None


def _request(buf: bytes) -> WireInferRequest:
    req = WireInferRequest()
    view = memoryview(buf)
    pos, end = 0, len(buf)
    while pos < end:
        number, stop, start = read_field(buf, pos, end)
        if stop < 0:
            raise UnusualRecordError
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
            raise UnusualRecordError
        pos = stop
    return req


def _input(buf: bytes, view: memoryview, pos: int, end: int) -> WireTensor:
    tensor = WireTensor()
    contents_seen = False
    while pos < end:
        number, stop, start = read_field(buf, pos, end)
        if number == 3:  # shape: packed int64 values, or one unpacked
            if stop < 0:
                value, pos = read_varint(buf, start, end)
                tensor.shape.append(int64(value))
                continue
            while start < stop:
                value, start = read_varint(buf, start, stop)
                tensor.shape.append(int64(value))
        elif stop < 0:
            raise UnusualRecordError
        elif number == 1:
            tensor.name = _text(buf, start, stop)
        elif number == 2:
            tensor.datatype = _text(buf, start, stop)
        elif number == 5 and not contents_seen:  # protobuf merges a repeated one: it parses
            contents_seen = True
            tensor.contents = parse_contents(buf, view, start, stop)
        else:
            raise UnusualRecordError
        pos = stop
    return tensor


def _output(buf: bytes, pos: int, end: int) -> WireOutput:
    name = ""
    while pos < end:
        number, stop, start = read_field(buf, pos, end)
        if number != 1 or stop < 0:
            raise UnusualRecordError
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
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"Value out of range: {value}")
    return _unsigned(value)


def _unsigned(value: int) -> int:
    """A value in an integer field's range as the 64 bits of its varint."""
    return value if value >= 0 else value & _UINT64


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
            packed.append(varint(_unsigned(value)))
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
