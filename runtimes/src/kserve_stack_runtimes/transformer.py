"""Transformer mode: a model whose predict forwards to a predictor host over REST or gRPC.

Subclass :class:`Transformer` and override ``preprocess`` / ``postprocess``; ``predict`` sends
what preprocess returned to ``predictor_host`` with ``predictor_protocol``:

* ``v1``: ``POST /v1/models/{name}:predict`` with a dict (``{"instances": ...}``) or an array.
* ``v2``: ``POST /v2/models/{name}/infer`` with an InferRequest (an array becomes one FP32/...
  input called ``input-0``).
* ``grpc-v2``: ``ModelInfer`` on ``inference.GRPCInferenceService``.

All transformers of a process share one HTTP connection pool and one gRPC channel per host.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import orjson

from kserve_stack_runtimes.errors import InvalidInputError, UpstreamError
from kserve_stack_runtimes.model import Headers, Model
from kserve_stack_runtimes.protocol import v2

PROTOCOLS = ("v1", "v2", "grpc-v2")


class PredictorClients:
    """The process-wide clients that transformers use to reach predictors."""

    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None
        self._grpc: Any = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                timeout=httpx.Timeout(60.0),
            )
        return self._http

    @property
    def grpc(self) -> Any:
        if self._grpc is None:
            from kserve_stack_runtimes.transports.grpc import GrpcPredictorClient  # noqa: PLC0415

            self._grpc = GrpcPredictorClient()
        return self._grpc


#: Shared by every Transformer of the process.
CLIENTS = PredictorClients()


def _as_request(payload: Any, model_name: str) -> v2.InferRequest:
    if isinstance(payload, v2.InferRequest):
        return payload
    if isinstance(payload, dict) and ("instances" in payload or "inputs" in payload):
        payload = payload.get("instances", payload.get("inputs"))
    array = payload if isinstance(payload, np.ndarray) else np.asarray(payload)
    return v2.InferRequest(model_name, v2.as_tensors(array, "input-0"))


class Transformer(Model):
    """A model that pre- and post-processes around a remote predictor."""

    def __init__(
        self,
        name: str,
        predictor_host: str,
        predictor_protocol: str = "v1",
        *,
        predictor_use_ssl: bool = False,
        predictor_request_timeout_seconds: float = 60.0,
    ) -> None:
        super().__init__(name)
        if predictor_protocol not in PROTOCOLS:
            raise ValueError(
                f"predictor_protocol must be one of {PROTOCOLS}, not {predictor_protocol!r}."
            )
        self.predictor_host = predictor_host
        self.protocol = predictor_protocol
        self.scheme = "https" if predictor_use_ssl else "http"
        self.timeout = predictor_request_timeout_seconds

    async def predict(self, payload: Any, headers: Headers) -> Any:
        forward = {"x-request-id": headers.get("x-request-id", "")}
        if self.protocol == "v1":
            return await self._post_v1(payload, forward)
        request = _as_request(payload, self.name)
        if self.protocol == "v2":
            return await self._post_v2(request, forward)
        return await CLIENTS.grpc.infer(
            self.predictor_host, request, self.name, forward, self.timeout
        )

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            response = await CLIENTS.http.post(
                url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"Predictor {self.predictor_host} unreachable: {exc!r}", 502
            ) from None
        if response.status_code != 200:
            try:
                message = orjson.loads(response.content).get("error", response.text)
            except (orjson.JSONDecodeError, AttributeError):
                message = response.text[:500]
            status = response.status_code if response.status_code < 500 else 502
            raise UpstreamError(
                f"Predictor answered {response.status_code}: {message}",
                status if status != 200 else 502,
            )
        return response

    async def _post_v1(self, payload: Any, headers: dict[str, str]) -> Any:
        if isinstance(payload, v2.InferRequest):
            payload = {"instances": payload.as_numpy()}
        elif not isinstance(payload, dict):
            payload = {"instances": payload}
        url = f"{self.scheme}://{self.predictor_host}/v1/models/{self.name}:predict"
        headers["content-type"] = "application/json"
        response = await self._post(url, v2.dumps(payload), headers)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError("The predictor's response is not JSON.", 502) from None

    async def _post_v2(self, request: v2.InferRequest, headers: dict[str, str]) -> Any:
        url = f"{self.scheme}://{self.predictor_host}/v2/models/{self.name}/infer"
        body, header_len = v2.encode_request(request)
        headers["content-type"] = "application/json"
        if header_len is not None:
            headers["inference-header-content-length"] = str(header_len)
            headers["content-type"] = "application/octet-stream"
        response = await self._post(url, body, headers)
        raw_len = response.headers.get("inference-header-content-length")
        try:
            return v2.decode_response(response.content, int(raw_len) if raw_len else None)
        except InvalidInputError as exc:
            raise UpstreamError(exc.message, 502) from None
