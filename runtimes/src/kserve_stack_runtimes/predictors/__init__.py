"""Predictive runtimes: each loads one model format and implements predict on a numpy batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kserve_stack_runtimes.errors import InvalidInputError
from kserve_stack_runtimes.protocol import v1
from kserve_stack_runtimes.protocol.v2 import InferRequest


def find_model_file(model_dir: str | Path, extensions: tuple[str, ...]) -> Path:
    """The one model file under ``model_dir`` (or ``model_dir`` itself when it is a file)."""
    root = Path(model_dir)
    if root.is_file():
        if root.suffix not in extensions:
            raise ValueError(f"{root} is not a model file ({', '.join(extensions)}).")
        return root
    if not root.is_dir():
        raise FileNotFoundError(f"Model directory {root} does not exist.")
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in extensions)
    if not found:
        raise FileNotFoundError(f"No model file ({', '.join(extensions)}) in {root}.")
    if len(found) > 1:
        raise ValueError(f"More than one model file in {root}: {', '.join(str(p) for p in found)}.")
    return found[0]


def input_array(payload: Any) -> np.ndarray[Any, Any]:
    """The batch to predict on: V1 instances, a V2 request's first input, or an array."""
    if isinstance(payload, InferRequest):
        return payload.as_numpy()
    if isinstance(payload, dict):
        return v1.instances_array(payload)
    if isinstance(payload, np.ndarray):
        return payload
    try:
        return np.asarray(payload)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("The input is not a regular array.") from exc
