"""The gRPC transport: ``inference.GRPCInferenceService`` (Open Inference Protocol), health.

Tensors arrive either in typed ``contents`` or as ``raw_input_contents`` (what Triton's client
sends); a request that used raw inputs is answered with ``raw_output_contents``.

Compiled by mypyc in wheels, like ``h2grpc`` (runtimes/setup.py); health checking is in
``health``, uncompiled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from kserve_stack_runtimes._generated import grpc_predict_v2_pb2 as pb
from kserve_stack_runtimes._generated import grpc_predict_v2_pb2_grpc as pb_grpc
from kserve_stack_runtimes.dataplane import DataPlane
from kserve_stack_runtimes.errors import InvalidInputError, ServingError, public_message, status_of
from kserve_stack_runtimes.logs import request_id_var
from kserve_stack_runtimes.protocol import v2
from kserve_stack_runtimes.transports.access import AccessLog
from kserve_stack_runtimes.transports.contents import read_contents
from kserve_stack_runtimes.transports.h2grpc import GrpcH2Server, Method, RpcContext
from kserve_stack_runtimes.transports.health import HEALTH_SERVICE_NAME, HealthService
from kserve_stack_runtimes.transports.infer_wire import encode_infer_response, parse_infer_request

log = logging.getLogger("kserve_stack_runtimes.grpc")

SERVICE_NAME = "inference.GRPCInferenceService"
_MODEL_INFER = f"/{SERVICE_NAME}/ModelInfer"
#: Calls that probes make every few seconds: their access lines are logged at DEBUG.
_PROBE_METHODS = frozenset(
    [f"/{HEALTH_SERVICE_NAME}/{m}" for m in ("Check", "Watch")]
    + [f"/{SERVICE_NAME}/{m}" for m in ("ServerLive", "ServerReady", "ModelReady")]
)


def _param_value(p: Any) -> Any:
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


def _params(m: Any) -> dict[str, Any] | None:
    return {k: _param_value(v) for k, v in m.items()} if m else None


def _set_param(target: Any, key: str, value: Any) -> None:
    p = target[key]
    if isinstance(value, bool):
        p.bool_param = value
    elif isinstance(value, int):
        p.int64_param = value
    elif isinstance(value, float):
        p.double_param = value
    else:
        p.string_param = str(value)


def decode_infer_request(req: Any) -> v2.InferRequest:
    """A ModelInferRequest (protobuf's message or ``infer_wire``'s) to an InferRequest."""
    tensors = req.inputs
    if not tensors:
        raise InvalidInputError("The request needs at least one input.")
    raw = req.raw_input_contents
    if raw and len(raw) != len(tensors):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} entries for {len(tensors)} inputs."
        )
    inputs = []
    # Each read of a message field crosses into upb: every field is read once.
    for i, t in enumerate(tensors):
        name, datatype = t.name, t.datatype
        if datatype not in v2.DATATYPES:
            raise InvalidInputError(f"Input {name!r}: unknown datatype {datatype!r}.")
        shape = t.shape[:]
        count = 1
        for d in shape:
            if d < 0:
                raise InvalidInputError(f"Input {name!r}: shape dimensions must be non-negative.")
            count *= d
        if raw:
            data = v2.decode_raw(raw[i], datatype, shape, name)
        else:
            data = read_contents(t.contents, datatype, shape, count, name).reshape(shape)
        parameters = t.parameters
        inputs.append(
            v2.InferTensor(name, data, datatype, shape, _params(parameters) if parameters else None)
        )
    wanted = req.outputs
    outputs = (
        [v2.RequestedOutput(o.name, _params(o.parameters)) for o in wanted] if wanted else None
    )
    parameters = req.parameters
    return v2.InferRequest(
        req.model_name,
        inputs,
        id=req.id or None,
        model_version=req.model_version or None,
        outputs=outputs,
        parameters=_params(parameters) if parameters else None,
    )


def parse_model_infer(message: bytes) -> Any:
    """A ModelInferRequest: the common shapes read by ``infer_wire``, the rest by protobuf."""
    return parse_infer_request(message) or pb.ModelInferRequest.FromString(message)


class InferenceServicer:
    """The Open Inference Protocol service over the data plane."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

    async def _fail(self, context: Any, exc: BaseException) -> None:
        if not isinstance(exc, ServingError):
            log.exception("unhandled error in a gRPC call")
        code = grpc.StatusCode(_CODE_BY_VALUE[status_of(exc).grpc.value])
        await context.abort(code, public_message(exc))

    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerLiveResponse(live=self.dp.live())

    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self.dp.ready())

    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        context.fields["model"] = request.name
        try:
            return pb.ModelReadyResponse(
                ready=self.dp.model_ready(request.name, request.version or None)
            )
        except Exception as exc:
            await self._fail(context, exc)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        meta = self.dp.server_metadata()
        return pb.ServerMetadataResponse(
            name=meta["name"], version=meta["version"], extensions=meta["extensions"]
        )

    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        context.fields["model"] = request.name
        try:
            meta = self.dp.model_metadata(request.name, request.version or None)
            return pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta.get("versions", []),
                platform=meta.get("platform", ""),
                inputs=[_tensor_meta(t) for t in meta.get("inputs", [])],
                outputs=[_tensor_meta(t) for t in meta.get("outputs", [])],
            )
        except Exception as exc:
            await self._fail(context, exc)

    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        request_id = metadata.get("x-request-id") or request.id or os.urandom(16).hex()
        metadata["x-request-id"] = request_id
        token = request_id_var.set(request_id)
        dp = self.dp
        name = request.model_name
        context.fields["model"] = name
        context.fields["request_id"] = request_id
        gauge = dp.metrics.inflight_gauge("grpc-v2")
        gauge.inc()
        dp.inflight += 1
        try:
            model = dp.repository.get_ready(name, request.model_version or None)
            infer_request = decode_infer_request(request)
            result = await dp.infer(model, infer_request, metadata)
            response = dp.to_v2(model, infer_request, result)
            return encode_infer_response(response, infer_request, bool(request.raw_input_contents))
        except asyncio.CancelledError:  # deadline passed or the client cancelled
            raise
        except Exception as exc:
            await self._fail(context, exc)
        finally:  # also for a call past its deadline or cancelled (the request is counted
            # once the call is over, with the status its answer had: GrpcServer._call_ended)
            gauge.dec()
            dp.inflight -= 1
            request_id_var.reset(token)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:  # noqa: N802
        name = request.triton_model_name or request.model_name  # Triton's layout, or KServe's
        context.fields["model"] = name
        try:
            await self.dp.repository.load(name, _params(request.parameters))
            return pb.RepositoryModelLoadResponse(model_name=name, isLoaded=True)
        except Exception as exc:
            await self._fail(context, exc)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:  # noqa: N802
        name = request.triton_model_name or request.model_name  # Triton's layout, or KServe's
        context.fields["model"] = name
        try:
            self.dp.repository.unload(name)
            return pb.RepositoryModelUnloadResponse(model_name=name, isUnloaded=True)
        except Exception as exc:
            await self._fail(context, exc)


_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def _tensor_meta(t: dict[str, Any]) -> Any:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=t["name"], datatype=t["datatype"], shape=t.get("shape", [])
    )


def _methods(servicer: InferenceServicer, health: HealthService) -> dict[str, Method]:
    methods: dict[str, Method] = {}
    for name in (
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
        "RepositoryModelLoad",
        "RepositoryModelUnload",
    ):
        parse = (
            parse_model_infer if name == "ModelInfer" else getattr(pb, f"{name}Request").FromString
        )
        methods[f"/{SERVICE_NAME}/{name}"] = Method(parse, getattr(servicer, name), streaming=False)
    parse = health_pb2.HealthCheckRequest.FromString
    methods[f"/{HEALTH_SERVICE_NAME}/Check"] = Method(parse, health.Check, streaming=False)
    methods[f"/{HEALTH_SERVICE_NAME}/Watch"] = Method(parse, health.Watch, streaming=True)
    return methods


class GrpcServer:
    """The gRPC listener (inference and health services) on the server's event loop."""

    def __init__(
        self,
        dataplane: DataPlane,
        host: str,
        port: int,
        max_message_bytes: int,
        *,
        reuse_port: bool = False,
        access_log: AccessLog | None = None,
    ) -> None:
        self.dp = dataplane
        self.health = HealthService()
        self.access_log = access_log
        self.server = GrpcH2Server(
            _methods(InferenceServicer(dataplane), self.health),
            host,
            port,
            max_message_bytes=max_message_bytes,
            reuse_port=reuse_port,
            on_call_end=self._call_ended,
        )
        self.port = self.server.port

    def _call_ended(self, context: RpcContext, http_status: int) -> None:
        """A call is over and its answer written: an inference call is counted (with the status
        its answer had), and the call gets its access line (the same fields as REST's)."""
        model = context.fields.get("model")
        status = context.status_name()
        if model is not None and context.method == _MODEL_INFER and model in self.dp.repository:
            self.dp.metrics.count_request(model, status, "grpc-v2")
        if self.access_log is None:
            return
        level = self.access_log.level(context.method in _PROBE_METHODS)
        if not level:
            return
        # A request that was not gRPC (415) got no gRPC status.
        grpc_status = status if http_status == 200 else "-"
        request_id = context.fields.get("request_id")
        if request_id is None:  # calls other than ModelInfer: the caller's id, if it gave one
            given = [v for k, v in context.invocation_metadata() if k == "x-request-id"]
            request_id = given[0] if given and isinstance(given[0], str) else "-"
        self.access_log.write(
            level,
            f"gRPC {context.method} {grpc_status}",
            client=context.peer().partition(":")[2] or "-",
            method="POST",
            path=context.method,
            status=http_status,
            grpc_status=grpc_status,
            started=context.started,
            request_id=request_id,
            model=model or "-",
            protocol="grpc-v2",
        )

    async def start(self) -> None:
        await self.set_serving(self.dp.ready())
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)


def encode_infer_request(request: v2.InferRequest, model_name: str) -> Any:
    """An InferRequest to a ModelInferRequest message with raw input contents."""
    msg = pb.ModelInferRequest(
        model_name=model_name, model_version=request.model_version or "", id=request.id or ""
    )
    if request.parameters:
        for k, val in request.parameters.items():
            _set_param(msg.parameters, k, val)
    for tensor in request.inputs:
        t = msg.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if tensor.parameters:
            for k, val in tensor.parameters.items():
                if k != "binary_data_size":
                    _set_param(t.parameters, k, val)
        msg.raw_input_contents.append(v2.encode_raw(tensor.data, tensor.datatype))
    for out in request.outputs or []:
        o = msg.outputs.add(name=out.name)
        for k, val in (out.parameters or {}).items():
            _set_param(o.parameters, k, val)
    return msg


def decode_infer_response(msg: Any) -> v2.InferResponse:
    """A ModelInferResponse message to an InferResponse."""
    raw = msg.raw_output_contents
    outputs = []
    for i, t in enumerate(msg.outputs):
        shape = list(t.shape)
        if raw:
            data = v2.decode_raw(raw[i], t.datatype, shape, t.name)
        else:
            count = math.prod(shape)
            data = read_contents(t.contents, t.datatype, shape, count, t.name).reshape(shape)
        outputs.append(v2.InferTensor(t.name, data, t.datatype, shape, _params(t.parameters)))
    return v2.InferResponse(
        msg.model_name,
        outputs,
        id=msg.id or None,
        model_version=msg.model_version or None,
        parameters=_params(msg.parameters),
    )


class GrpcPredictorClient:
    """A shared grpc.aio channel per predictor host, for transformers (``grpc-v2``)."""

    def __init__(self) -> None:
        self._stubs: dict[str, Any] = {}

    def stub(self, host: str) -> Any:
        stub = self._stubs.get(host)
        if stub is None:
            channel = grpc.aio.insecure_channel(
                host, options=[("grpc.max_receive_message_length", -1)]
            )
            stub = self._stubs[host] = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        return stub

    async def infer(
        self,
        host: str,
        request: v2.InferRequest,
        model_name: str,
        headers: dict[str, str],
        timeout: float,
    ) -> v2.InferResponse:
        from kserve_stack_runtimes.errors import UpstreamError  # noqa: PLC0415

        metadata = [("x-request-id", headers.get("x-request-id", ""))]
        try:
            reply = await self.stub(host).ModelInfer(
                encode_infer_request(request, model_name), metadata=metadata, timeout=timeout
            )
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            status = {
                grpc.StatusCode.INVALID_ARGUMENT: 400,
                grpc.StatusCode.NOT_FOUND: 404,
                grpc.StatusCode.UNAVAILABLE: 503,
            }.get(code, 502)
            raise UpstreamError(
                f"Predictor {host} answered {code.name}: {exc.details()}", status
            ) from None
        try:
            return decode_infer_response(reply)
        except InvalidInputError as exc:
            raise UpstreamError(
                f"Predictor {host} answered a malformed tensor: {exc}", 502
            ) from None
