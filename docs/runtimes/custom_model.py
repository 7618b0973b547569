"""A custom model and a transformer in a few lines each.

Serve the model:
    kserve-stack-runtime custom --model_name scaler \
        --model_class docs/runtimes/custom_model.py:Scaler
Put the transformer in front of a V1 predictor that serves a model named "iris" on port 8080:
    kserve-stack-runtime custom --model_name iris \
        --model_class docs/runtimes/custom_model.py:CentimetresToMillimetres \
        --predictor_host 127.0.0.1:8080 --predictor_protocol v1 --http_port 9080
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.predictors import input_array
from kserve_stack_runtimes.protocol.v2 import InferResponse
from kserve_stack_runtimes.transformer import Transformer


class Scaler(Model):
    """Multiplies every input by a factor it 'loads'; answers V1 and V2 alike."""

    def load(self) -> bool:
        self.factor = 2.0  # read weights, open files, warm up...
        return True

    async def preprocess(self, payload: Any, headers: Headers) -> np.ndarray:
        await asyncio.sleep(0)  # async stages are awaited; sync ones are called
        return input_array(payload).astype(np.float64)

    def predict(self, payload: np.ndarray, headers: Headers) -> np.ndarray:
        return payload * self.factor

    def postprocess(self, result: np.ndarray, headers: Headers) -> dict[str, Any]:
        return {"scaled": result, "request_id": np.array([headers["x-request-id"]])}


class CentimetresToMillimetres(Transformer):
    """Converts features before the predictor sees them, and names its classes after."""

    CLASSES = ("setosa", "versicolor", "virginica")

    def preprocess(self, payload: Any, headers: Headers) -> dict[str, Any]:
        return {"instances": (input_array(payload) / 10.0).tolist()}

    def postprocess(self, result: Any, headers: Headers) -> dict[str, Any]:
        # A V1 predictor answers a dict, a V2 (REST or gRPC) one an InferResponse.
        if isinstance(result, InferResponse):
            labels = result.outputs[0].data
        else:
            labels = result["predictions"]
        return {"predictions": [self.CLASSES[int(c)] for c in np.ravel(labels)]}
