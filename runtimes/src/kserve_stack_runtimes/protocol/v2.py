"""The Open Inference Protocol (V2) tensor codec: JSON, the binary tensor data extension, numpy.

Requests decode into :class:`InferRequest` whose inputs hold numpy arrays; responses encode from
:class:`InferResponse`. Numeric tensor data is converted by numpy in C (never element by element in
Python); only BYTES tensors need a Python loop, since each element is its own object.

Binary extension (as Triton's clients use it): the body is a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw tensors, in input order, for every
input whose ``parameters.binary_data_size`` is set. Raw tensors are little-endian, row-major; a
BYTES element is a 4-byte little-endian length followed by its bytes. An output is sent binary when
the request's ``parameters.binary_data_output`` is true or that output's requested
``parameters.binary_data`` is true.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from kserve_stack_runtimes.errors import InvalidInputError

#: Datatype name -> numpy dtype (explicitly little-endian: that is the wire order).
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}

_KIND_TO_DATATYPE: dict[tuple[str, int], str] = {
    (dt.kind, dt.itemsize): name for name, dt in DATATYPES.items() if name != "BYTES"
}

#: Which numpy kinds of JSON-decoded data each datatype family accepts.
_ACCEPTED_KINDS = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


class InferTensor:
    """One named tensor of a request or a response."""

    __slots__ = ("data", "datatype", "name", "parameters", "shape")

    def __init__(
        self,
        name: str,
        data: np.ndarray[Any, Any],
        datatype: str | None = None,
        shape: Sequence[int] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.data = data
        self.datatype = datatype if datatype is not None else datatype_of(data)
        self.shape: list[int] = list(shape) if shape is not None else list(data.shape)
        self.parameters = parameters


class RequestedOutput:
    """An output the client asked for, with its parameters (``binary_data``, ...)."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: dict[str, Any] | None = None) -> None:
        self.name = name
        self.parameters = parameters


class InferRequest:
    """A decoded V2 inference request."""

    __slots__ = ("id", "inputs", "model_name", "model_version", "outputs", "parameters")

    def __init__(
        self,
        model_name: str,
        inputs: list[InferTensor],
        *,
        id: str | None = None,
        model_version: str | None = None,
        outputs: list[RequestedOutput] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.id = id
        self.inputs = inputs
        self.outputs = outputs
        self.parameters = parameters

    def input(self, name: str) -> InferTensor:
        """The input called ``name`` (InvalidInputError when absent)."""
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        raise InvalidInputError(f"The request has no input named {name!r}.")

    def as_numpy(self) -> np.ndarray[Any, Any]:
        """The first input's data: what single-input models (sklearn, xgboost, ...) predict on."""
        return self.inputs[0].data

    def binary_output_wanted(self, name: str) -> bool:
        """Whether output ``name`` is to be sent as raw binary data."""
        if self.outputs:
            for out in self.outputs:
                if out.name == name and out.parameters and "binary_data" in out.parameters:
                    return bool(out.parameters["binary_data"])
        return bool(self.parameters and self.parameters.get("binary_data_output"))


class InferResponse:
    """The answer of a model to an :class:`InferRequest`."""

    __slots__ = ("id", "model_name", "model_version", "outputs", "parameters")

    def __init__(
        self,
        model_name: str,
        outputs: list[InferTensor],
        *,
        id: str | None = None,
        model_version: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.id = id
        self.outputs = outputs
        self.parameters = parameters


def datatype_of(array: np.ndarray[Any, Any]) -> str:
    """The V2 datatype name of a numpy array (str/bytes/object arrays are BYTES)."""
    kind = array.dtype.kind
    if kind in "OSU":
        return "BYTES"
    name = _KIND_TO_DATATYPE.get((kind, array.dtype.itemsize))
    if name is None:
        raise InvalidInputError(
            f"numpy dtype {array.dtype} has no Open Inference Protocol datatype."
        )
    return name


def _checked_shape(shape: Any, name: str) -> list[int]:
    if not isinstance(shape, list):
        raise InvalidInputError(f"Input {name!r}: 'shape' must be a list of non-negative integers.")
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise InvalidInputError(
                f"Input {name!r}: 'shape' must be a list of non-negative integers."
            )
    return shape


def _flatten_bytes(data: Any, out: list[bytes], name: str) -> None:
    for item in data:
        if isinstance(item, str):
            out.append(item.encode())
        elif isinstance(item, list):
            _flatten_bytes(item, out, name)
        else:
            raise InvalidInputError(f"Input {name!r}: BYTES data must hold strings.")


def decode_json_data(data: Any, datatype: str, shape: list[int], name: str) -> np.ndarray[Any, Any]:
    """Tensor data from its JSON form (flat or nested lists) to a numpy array of ``shape``."""
    count = math.prod(shape)
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat: list[bytes] = []
        _flatten_bytes(data, flat, name)
        if len(flat) != count:
            raise InvalidInputError(
                f"Input {name!r}: shape {shape} holds {count} elements but data has {len(flat)}."
            )
        arr = np.empty(count, dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    dtype = DATATYPES[datatype]
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"Input {name!r}: data is not a regular array of numbers.") from exc
    if raw.size != count:
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} holds {count} elements but data has {raw.size}."
        )
    if count and dtype.kind in "iu" and raw.dtype.kind in "fO":
        # Python ints beyond int64 (UINT64's upper half) make numpy fall back to floats or
        # objects: convert exactly, and accept only if no value was fractional.
        try:
            exact = np.array(data, dtype=dtype)
        except (OverflowError, ValueError, TypeError):
            raise InvalidInputError(
                f"Input {name!r}: data does not fit datatype {datatype}."
            ) from None
        if raw.dtype.kind == "f" and not np.array_equal(exact.astype(np.float64), raw):
            raise InvalidInputError(f"Input {name!r}: data does not fit datatype {datatype}.")
        return exact.reshape(shape)
    if count and raw.dtype.kind not in _ACCEPTED_KINDS[dtype.kind]:
        raise InvalidInputError(f"Input {name!r}: data does not fit datatype {datatype}.")
    if dtype.kind in "iu" and count:
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidInputError(f"Input {name!r}: a value is out of range for {datatype}.")
    return raw.astype(dtype, copy=False).reshape(shape)


def decode_raw(
    raw: bytes | memoryview, datatype: str, shape: list[int], name: str
) -> np.ndarray[Any, Any]:
    """Tensor data from its raw binary form (binary extension, gRPC raw contents)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        view = memoryview(raw)
        items: list[bytes] = []
        pos, end = 0, len(view)
        while pos < end:
            if pos + 4 > end:
                raise InvalidInputError(f"Input {name!r}: truncated BYTES element length.")
            (length,) = struct.unpack_from("<I", view, pos)
            pos += 4
            if pos + length > end:
                raise InvalidInputError(f"Input {name!r}: BYTES element runs past the data.")
            items.append(bytes(view[pos : pos + length]))
            pos += length
        if len(items) != count:
            raise InvalidInputError(
                f"Input {name!r}: shape {shape} holds {count} elements but data has {len(items)}."
            )
        arr = np.empty(count, dtype=object)
        arr[:] = items
        return arr.reshape(shape)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"Input {name!r}: shape {shape} of {datatype} needs {count * dtype.itemsize} bytes "
            f"but {len(raw)} were sent."
        )
    return array_view(raw, dtype).reshape(shape)


def array_view(buffer: bytes | memoryview, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """numpy's read-only view of ``buffer``'s elements; a copy where they are not aligned for
    ``dtype`` (a tensor inside a message often is not), as numpy's loops for unaligned data are
    slower and not every library accepts them."""
    array = np.frombuffer(buffer, dtype)
    return array if array.flags.aligned else array.copy()


def encode_raw(array: np.ndarray[Any, Any], datatype: str) -> bytes:
    """The raw binary form of a tensor (inverse of :func:`decode_raw`)."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.reshape(-1):
            b = item if isinstance(item, bytes) else str(item).encode()
            parts.append(struct.pack("<I", len(b)))
            parts.append(b)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()


def _parameters(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: 'parameters' must be an object.")
    return value


def decode_request(
    body: bytes,
    model_name: str,
    model_version: str | None = None,
    header_length: int | None = None,
) -> InferRequest:
    """Decode a REST V2 infer body (JSON, or JSON header + binary tensors)."""
    binary: memoryview | None = None
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length {header_length} does not fit the body "
                f"of {len(body)} bytes."
            )
        binary = memoryview(body)[header_length:]
        body = body[:header_length]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"Malformed JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("The request body must be a JSON object.")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInputError("The request needs a non-empty 'inputs' list.")
    offset = 0
    inputs: list[InferTensor] = []
    for i, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise InvalidInputError(f"inputs[{i}] must be an object.")
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInputError(f"inputs[{i}] needs a string 'name'.")
        datatype = item.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise InvalidInputError(
                f"Input {name!r}: unknown datatype {datatype!r}; expected one of "
                f"{', '.join(DATATYPES)}."
            )
        shape = _checked_shape(item.get("shape"), name)
        params = _parameters(item.get("parameters"), f"Input {name!r}")
        size = params.get("binary_data_size") if params else None
        if size is not None:
            if type(size) is not int or size < 0:
                raise InvalidInputError(
                    f"Input {name!r}: binary_data_size must be a non-negative integer."
                )
            if binary is None or offset + size > len(binary):
                raise InvalidInputError(
                    f"Input {name!r}: binary_data_size {size} runs past the body."
                )
            data = decode_raw(binary[offset : offset + size], datatype, shape, name)
            offset += size
        else:
            if "data" not in item:
                raise InvalidInputError(f"Input {name!r} has neither 'data' nor binary_data_size.")
            data = decode_json_data(item["data"], datatype, shape, name)
        inputs.append(InferTensor(name, data, datatype, shape, params))
    if binary is not None and offset != len(binary):
        raise InvalidInputError(
            f"The body carries {len(binary) - offset} binary bytes that no input claims."
        )
    outputs: list[RequestedOutput] | None = None
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise InvalidInputError("'outputs' must be a list.")
        outputs = []
        for i, out in enumerate(raw_outputs):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise InvalidInputError(f"outputs[{i}] must be an object with a string 'name'.")
            outputs.append(
                RequestedOutput(out["name"], _parameters(out.get("parameters"), f"outputs[{i}]"))
            )
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise InvalidInputError("'id' must be a string.")
    return InferRequest(
        model_name,
        inputs,
        id=req_id,
        model_version=model_version,
        outputs=outputs,
        parameters=_parameters(doc.get("parameters"), "The request"),
    )


def _json_data(array: np.ndarray[Any, Any], datatype: str) -> Any:
    if datatype == "BYTES":
        return [
            x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)
            for x in array.reshape(-1)
        ]
    if datatype == "FP16":
        return array.astype(np.float32).reshape(-1)
    return np.ascontiguousarray(array).reshape(-1)


def select_outputs(response: InferResponse, request: InferRequest | None) -> list[InferTensor]:
    """The outputs to send: all, or the ones the request names (unknown names are a 400)."""
    if request is None or not request.outputs:
        return response.outputs
    by_name = {t.name: t for t in response.outputs}
    chosen = []
    for out in request.outputs:
        tensor = by_name.get(out.name)
        if tensor is None:
            raise InvalidInputError(
                f"Output {out.name!r} was requested but the model has outputs {list(by_name)}."
            )
        chosen.append(tensor)
    return chosen


def encode_response(
    response: InferResponse, request: InferRequest | None = None
) -> tuple[bytes, int | None]:
    """Encode a response; returns the body and, when it has binary parts, the JSON header length."""
    outputs_doc: list[dict[str, Any]] = []
    binaries: list[bytes] = []
    for tensor in select_outputs(response, request):
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        params = dict(tensor.parameters) if tensor.parameters else None
        if request is not None and request.binary_output_wanted(tensor.name):
            raw = encode_raw(tensor.data, tensor.datatype)
            params = params or {}
            params["binary_data_size"] = len(raw)
            binaries.append(raw)
        else:
            entry["data"] = _json_data(tensor.data, tensor.datatype)
        if params:
            entry["parameters"] = params
        outputs_doc.append(entry)
    doc: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version:
        doc["model_version"] = response.model_version
    if response.id is not None:
        doc["id"] = response.id
    if response.parameters:
        doc["parameters"] = response.parameters
    doc["outputs"] = outputs_doc
    header = orjson.dumps(doc, option=_JSON_OPTS)
    if not binaries:
        return header, None
    return b"".join([header, *binaries]), len(header)


def as_tensors(result: Any, default_name: str = "output-0") -> list[InferTensor]:
    """Turn what a model returned (array, list, dict of arrays, tensors) into output tensors."""
    if isinstance(result, InferTensor):
        return [result]
    if isinstance(result, Mapping):
        return [_tensor(str(k), v) for k, v in result.items()]
    if isinstance(result, list) and result and all(isinstance(t, InferTensor) for t in result):
        return list(result)
    return [_tensor(default_name, result)]


def _tensor(name: str, value: Any) -> InferTensor:
    if isinstance(value, InferTensor):
        return value
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    datatype = datatype_of(array)
    if datatype == "BYTES" and array.dtype.kind != "O":
        array = np.array(
            [x.encode() if isinstance(x, str) else bytes(x) for x in array.reshape(-1)],
            dtype=object,
        ).reshape(array.shape)
    return InferTensor(name, array, datatype)


def dumps(doc: Any) -> bytes:
    """JSON-encode a document that may hold numpy arrays and scalars."""
    return orjson.dumps(doc, option=_JSON_OPTS, default=_default)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def encode_request(request: InferRequest) -> tuple[bytes, int | None]:
    """Encode a request for a V2 REST predictor: JSON, with BYTES / FP16 inputs sent binary."""
    inputs_doc: list[dict[str, Any]] = []
    binaries: list[bytes] = []
    for tensor in request.inputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        params = dict(tensor.parameters) if tensor.parameters else {}
        params.pop("binary_data_size", None)
        if tensor.datatype in ("BYTES", "FP16"):
            raw = encode_raw(tensor.data, tensor.datatype)
            params["binary_data_size"] = len(raw)
            binaries.append(raw)
        else:
            entry["data"] = np.ascontiguousarray(tensor.data).reshape(-1)
        if params:
            entry["parameters"] = params
        inputs_doc.append(entry)
    doc: dict[str, Any] = {"inputs": inputs_doc}
    if request.id is not None:
        doc["id"] = request.id
    if request.parameters:
        doc["parameters"] = request.parameters
    if request.outputs:
        doc["outputs"] = [
            {"name": o.name, **({"parameters": o.parameters} if o.parameters else {})}
            for o in request.outputs
        ]
    header = orjson.dumps(doc, option=_JSON_OPTS)
    if not binaries:
        return header, None
    return b"".join([header, *binaries]), len(header)


def decode_response(body: bytes, header_length: int | None = None) -> InferResponse:
    """Decode a V2 REST infer response (JSON, or JSON header + binary outputs)."""
    binary: memoryview | None = None
    if header_length is not None:
        binary = memoryview(body)[header_length:]
        body = body[:header_length]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"Malformed JSON in the predictor's response: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        raise InvalidInputError("The predictor's response has no 'outputs' list.")
    offset = 0
    outputs = []
    for item in doc["outputs"]:
        name, datatype = item.get("name"), item.get("datatype")
        if not isinstance(name, str) or datatype not in DATATYPES:
            raise InvalidInputError("The predictor's response has a malformed output.")
        shape = _checked_shape(item.get("shape"), name)
        params: dict[str, Any] | None = item.get("parameters") or None
        size = params.get("binary_data_size") if params else None
        if params and size is not None and binary is not None:
            data = decode_raw(binary[offset : offset + size], datatype, shape, name)
            offset += size
            params = {k: v for k, v in params.items() if k != "binary_data_size"} or None
        else:
            data = decode_json_data(item.get("data"), datatype, shape, name)
        outputs.append(InferTensor(name, data, datatype, shape, params))
    return InferResponse(
        str(doc.get("model_name", "")),
        outputs,
        id=doc.get("id"),
        model_version=doc.get("model_version"),
        parameters=doc.get("parameters"),
    )
