"""The V1 protocol: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol.v2 import dumps


def decode_request(body: bytes) -> dict[str, Any]:
    """Parse and check a V1 predict/explain body; the model receives the dict as is."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"Malformed JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("The request body must be a JSON object.")
    if "instances" in doc:
        if not isinstance(doc["instances"], list):
            raise InvalidInputError("'instances' must be a list.")
    elif "inputs" in doc:
        if not isinstance(doc["inputs"], list | dict):
            raise InvalidInputError("'inputs' must be a list or an object.")
    else:
        raise InvalidInputError("The request needs an 'instances' (or 'inputs') list.")
    return doc


def instances_array(payload: dict[str, Any]) -> np.ndarray[Any, Any]:
    """The V1 instances as one numeric numpy array (a 400 when ragged or not numeric)."""
    data = payload.get("instances", payload.get("inputs"))
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("'instances' must be a regular (non-ragged) array.") from exc
    if array.dtype.kind not in "biuf":
        raise InvalidInputError("'instances' must hold numbers.")
    return array


def encode_response(result: Any) -> bytes:
    """Wrap a model result as ``{"predictions": ...}`` unless it already is a response dict."""
    if isinstance(result, dict) and ("predictions" in result or "explanations" in result):
        return dumps(result)
    return dumps({"predictions": result})
