"""The data plane: one place that runs the model lifecycle for every transport (REST, gRPC)."""

from __future__ import annotations

import logging
import time
from typing import Any

from kserve_stack_runtimes import __version__
from kserve_stack_runtimes.metrics import Metrics
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.protocol.v2 import InferRequest, InferResponse, as_tensors
from kserve_stack_runtimes.repository import ModelRepository

log = logging.getLogger("kserve_stack_runtimes.latency")

SERVER_NAME = "kserve-stack"
EXTENSIONS = ["model_repository", "binary_tensor_data", "health", "metrics"]


class DataPlane:
    """Runs preprocess -> predict -> postprocess (or explain) with metrics, for any transport."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: Metrics,
        *,
        latency_logging: bool = False,
    ) -> None:
        self.repository = repository
        self.metrics = metrics
        self.latency_logging = latency_logging
        #: False once shutdown began: readiness turns off, in-flight requests still finish.
        self.accepting = True
        self.inflight = 0

    # -- health and metadata ---------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.accepting and self.repository.all_ready()

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        model = self.repository.get(name)
        if version and model.version and version != model.version:
            self.repository.get_ready(name, version)
        return self.accepting and model.ready

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        return self.repository.get_ready(name, version).metadata()

    # -- inference -------------------------------------------------------------------------
    async def infer(self, model: Model, payload: Any, headers: Headers) -> Any:
        """Run the lifecycle on ``payload``; returns what postprocess returned."""
        observe = self.metrics.observe_stage
        name = model.name
        t0 = time.perf_counter()
        data = await model.call_stage("preprocess", payload, headers)
        t1 = time.perf_counter()
        result = await model.call_stage("predict", data, headers)
        t2 = time.perf_counter()
        result = await model.call_stage("postprocess", result, headers)
        t3 = time.perf_counter()
        observe("preprocess", name, t1 - t0)
        observe("predict", name, t2 - t1)
        observe("postprocess", name, t3 - t2)
        if self.latency_logging:
            log.info(
                "model %s latency: preprocess %.3f ms, predict %.3f ms, postprocess %.3f ms",
                name,
                (t1 - t0) * 1e3,
                (t2 - t1) * 1e3,
                (t3 - t2) * 1e3,
                extra={"model": name},
            )
        return result

    async def explain(self, model: Model, payload: Any, headers: Headers) -> Any:
        t0 = time.perf_counter()
        result = await model.call_stage("explain", payload, headers)
        self.metrics.observe_stage("explain", model.name, time.perf_counter() - t0)
        return result

    @staticmethod
    def to_v2(model: Model, request: InferRequest, result: Any) -> InferResponse:
        """Wrap what a model returned for a V2 request as an InferResponse."""
        if isinstance(result, InferResponse):
            if result.id is None:
                result.id = request.id
            return result
        return InferResponse(
            model.name,
            as_tensors(result),
            id=request.id,
            model_version=model.version,
        )
