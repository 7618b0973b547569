"""The REST transport: a lean ASGI application serving V1, V2, health, metrics and the OpenAPI spec.

No framework sits between the HTTP/1.1 server (``transports/http1.py``) and the data plane: a
path is split once and dispatched by a few comparisons, bodies are read into one bytes object
(bounded by ``max_request_body_bytes``) and JSON is parsed and written by orjson. Every error
leaves as ``{"error": "..."}`` with the status from :mod:`kserve_stack_runtimes.errors`; the
server never answers a stack trace.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from kserve_stack_runtimes.dataplane import DataPlane
from kserve_stack_runtimes.errors import (
    InvalidInputError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RouteNotFoundError,
    ServingError,
    public_message,
    status_of,
)
from kserve_stack_runtimes.logs import request_id_var
from kserve_stack_runtimes.protocol import v1, v2
from kserve_stack_runtimes.settings import ServerSettings
from kserve_stack_runtimes.transports.access import AccessLog
from kserve_stack_runtimes.transports.openapi import DOCS_HTML, openapi_spec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("kserve_stack_runtimes.rest")
_PROBE_PATHS = frozenset({"/", "/v2/health/live", "/v2/health/ready", "/metrics"})

_JSON = b"application/json"
_HEADER_LEN = "inference-header-content-length"


class Reply:
    """A response about to be sent: status, body, extra headers, and what to log."""

    __slots__ = ("body", "content_type", "extra_headers", "model", "protocol", "status")

    def __init__(
        self,
        body: bytes,
        status: int = 200,
        content_type: bytes = _JSON,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.extra_headers = extra_headers
        self.model = ""
        self.protocol = "rest"


def _json(doc: Any, status: int = 200) -> Reply:
    return Reply(orjson.dumps(doc), status)


class RestApp:
    """The ASGI callable of the REST transport."""

    def __init__(self, dataplane: DataPlane, settings: ServerSettings) -> None:
        self.dp = dataplane
        self.settings = settings
        self.max_body = settings.max_request_body_bytes
        self.access_log = AccessLog(settings)
        self._spec = orjson.dumps(openapi_spec())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            headers[key.decode("latin-1")] = value.decode("latin-1")
        request_id = headers.get("x-request-id") or os.urandom(16).hex()
        headers["x-request-id"] = request_id
        token = request_id_var.set(request_id)
        dp = self.dp
        protocol = "rest"
        try:
            reply = await self._dispatch(scope, receive, headers)
        except ServingError as exc:
            reply = Reply(orjson.dumps({"error": exc.message}), status_of(exc).http)
        except Exception as exc:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            reply = Reply(orjson.dumps({"error": public_message(exc)}), 500)
        finally:
            request_id_var.reset(token)
        if reply.model:
            dp.metrics.count_request(reply.model, str(reply.status), reply.protocol)
            protocol = reply.protocol
        raw_headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", request_id.encode("latin-1")),
        ]
        if reply.extra_headers:
            raw_headers.extend(reply.extra_headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})
        path = scope["path"]
        level = self.access_log.level(path in _PROBE_PATHS)
        if level:
            client = scope.get("client")
            self.access_log.write(
                level,
                f"{scope['method']} {path} {reply.status}",
                client=f"{client[0]}:{client[1]}" if client else "-",
                method=scope["method"],
                path=path,
                status=reply.status,
                grpc_status="-",
                started=start,
                request_id=request_id,
                model=reply.model or "-",
                protocol=protocol,
            )

    async def _read_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLargeError(
                f"The request body of {declared} bytes exceeds the limit of {self.max_body} bytes."
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise PayloadTooLargeError(
                        f"The request body exceeds the limit of {self.max_body} bytes."
                    )
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _dispatch(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Reply:
        method: str = scope["method"]
        path: str = scope["path"]
        parts = path.strip("/").split("/")
        head = parts[0]
        n = len(parts)
        dp = self.dp
        if head == "v2":
            if n >= 3 and parts[1] == "models":
                # /v2/models/{name}[/versions/{v}][/ready|/infer]
                name = parts[2]
                version: str | None = None
                rest = parts[3:]
                if len(rest) >= 2 and rest[0] == "versions":
                    version = rest[1]
                    rest = rest[2:]
                if not rest:
                    _allow(method, "GET")
                    return _json(dp.model_metadata(name, version))
                if rest == ["infer"]:
                    _allow(method, "POST")
                    return await self._v2_infer(scope, receive, headers, name, version)
                if rest == ["ready"]:
                    _allow(method, "GET")
                    ready = dp.model_ready(name, version)
                    return _json({"name": name, "ready": ready}, 200 if ready else 503)
            elif n == 1:
                _allow(method, "GET")
                return _json(dp.server_metadata())
            elif n == 3 and parts[1] == "health":
                _allow(method, "GET")
                if parts[2] == "live":
                    return _json({"live": dp.live()})
                if parts[2] == "ready":
                    ready = dp.ready()
                    return _json({"ready": ready}, 200 if ready else 503)
            elif n >= 3 and parts[1] == "repository":
                return await self._repository(method, parts[2:], scope, receive, headers)
        elif head == "v1":
            if n == 2 and parts[1] == "models":
                _allow(method, "GET")
                return _json({"models": dp.repository.names()})
            if n == 3 and parts[1] == "models":
                name, _, verb = parts[2].rpartition(":")
                if not name:
                    _allow(method, "GET")
                    model = dp.repository.get(verb)
                    return _json({"name": model.name, "ready": model.ready})
                if verb in ("predict", "explain"):
                    _allow(method, "POST")
                    return await self._v1(scope, receive, headers, name, verb)
        elif n == 1:
            if head == "metrics":
                _allow(method, "GET")
                return Reply(dp.metrics.exposition(), content_type=dp.metrics.content_type.encode())
            if head == "openapi.json":
                _allow(method, "GET")
                return Reply(self._spec)
            if head == "":
                _allow(method, "GET")
                return _json({"status": "alive"})
            if head == "docs" and self.settings.enable_docs_url:
                _allow(method, "GET")
                return Reply(DOCS_HTML.encode(), content_type=b"text/html; charset=utf-8")
        raise RouteNotFoundError(f"No endpoint at {path}.")

    async def _v1(
        self, scope: Scope, receive: Receive, headers: dict[str, str], name: str, verb: str
    ) -> Reply:
        dp = self.dp
        model = dp.repository.get_ready(name)
        gauge = dp.metrics.inflight_gauge("v1")
        gauge.inc()
        dp.inflight += 1
        try:
            reply = await self._v1_inner(scope, receive, headers, model, verb)
        except ServingError as exc:
            reply = Reply(orjson.dumps({"error": exc.message}), status_of(exc).http)
        finally:
            gauge.dec()
            dp.inflight -= 1
        reply.model = name
        reply.protocol = "v1"
        return reply

    async def _v1_inner(
        self, scope: Scope, receive: Receive, headers: dict[str, str], model: Any, verb: str
    ) -> Reply:
        body = await self._read_body(scope, receive, headers)
        payload = v1.decode_request(body)
        if verb == "predict":
            result = await self.dp.infer(model, payload, headers)
        else:
            result = await self.dp.explain(model, payload, headers)
        return Reply(v1.encode_response(result))

    async def _v2_infer(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        name: str,
        version: str | None,
    ) -> Reply:
        dp = self.dp
        model = dp.repository.get_ready(name, version)
        gauge = dp.metrics.inflight_gauge("v2")
        gauge.inc()
        dp.inflight += 1
        try:
            body = await self._read_body(scope, receive, headers)
            header_len: int | None = None
            raw_len = headers.get(_HEADER_LEN)
            if raw_len is not None:
                if not raw_len.strip().isdigit():
                    raise InvalidInputError("Inference-Header-Content-Length must be an integer.")
                header_len = int(raw_len)
            request = v2.decode_request(body, name, version, header_len)
            result = await dp.infer(model, request, headers)
            response = dp.to_v2(model, request, result)
            out, out_header_len = v2.encode_response(response, request)
            reply = Reply(out)
            if out_header_len is not None:
                reply.content_type = b"application/octet-stream"
                reply.extra_headers = [
                    (b"inference-header-content-length", str(out_header_len).encode())
                ]
        except ServingError as exc:
            reply = Reply(orjson.dumps({"error": exc.message}), status_of(exc).http)
        finally:
            gauge.dec()
            dp.inflight -= 1
        reply.model = name
        reply.protocol = "v2"
        return reply

    async def _repository(
        self,
        method: str,
        parts: list[str],
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
    ) -> Reply:
        repo = self.dp.repository
        if parts == ["index"]:
            _allow(method, "POST", "GET")
            return _json(repo.index())
        if len(parts) == 3 and parts[0] == "models" and parts[2] in ("load", "unload"):
            _allow(method, "POST")
            body = await self._read_body(scope, receive, headers)
            name = parts[1]
            if parts[2] == "load":
                await repo.load(name, _load_parameters(body))
                return _json({"name": name, "load": True})
            repo.unload(name)
            return _json({"name": name, "unload": True})
        raise RouteNotFoundError(f"No endpoint at {scope['path']}.")


def _load_parameters(body: bytes) -> dict[str, Any] | None:
    """The ``parameters`` of a repository load request's body (it may have none)."""
    if not body.strip():
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"The load request is not valid JSON: {exc}") from None
    parameters = doc.get("parameters") if isinstance(doc, dict) else None
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInputError("The load request's parameters must be an object.")
    return parameters


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise MethodNotAllowedError(
            f"Method {method} is not allowed here; use {' or '.join(allowed)}."
        )
