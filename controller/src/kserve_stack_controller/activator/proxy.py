"""The activator's HTTP application: name the target, hold while it has no ready endpoint,
forward with streamed bodies over one shared client pool.

Answers of its own are JSON ``{"error": ...}``: 400 for a missing or malformed target
header, 404 for a Service that does not exist (or a namespace this activator does not
serve), 504 when no endpoint turned ready within the hold timeout, 502 when the endpoint
cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from kserve_stack_controller.activator.endpoints import Endpoint, Endpoints, Key
from kserve_stack_controller.activator.metrics import Metrics
from kserve_stack_controller.constants import (
    HEADER_ACTIVATOR_HOLD_TIMEOUT,
    HEADER_ACTIVATOR_TARGET,
)

log = logging.getLogger("kserve_stack_controller.activator.proxy")

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Hop-by-hop headers (RFC 9110 7.6.1) are not forwarded, nor the activator's own.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        HEADER_ACTIVATOR_TARGET,
        HEADER_ACTIVATOR_HOLD_TIMEOUT,
    )
)


class Waker(Protocol):
    def wake(self, key: Key) -> None: ...


class ServiceLookup(Protocol):
    async def exists(self, key: Key) -> bool: ...


@dataclass
class ProxySettings:
    hold_timeout: float = 300.0
    max_hold_timeout: float = 900.0
    namespaces: frozenset[str] = frozenset()  # empty: every namespace
    #: (host or "*", port) -> (host, port): where to connect instead of an endpoint address.
    connect_to: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)


class TargetError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_target(value: str | None) -> Key:
    if not value:
        raise TargetError(
            400,
            f"missing header {HEADER_ACTIVATOR_TARGET}: NAMESPACE/SERVICE (the HTTPRoute of an "
            "InferenceService that scales to zero sets it)",
        )
    namespace, _, service = value.strip().partition("/")
    if not DNS_LABEL.match(namespace) or not DNS_LABEL.match(service):
        raise TargetError(
            400,
            f"header {HEADER_ACTIVATOR_TARGET}: {value!r} is not NAMESPACE/SERVICE "
            "(two DNS labels)",
        )
    return namespace, service


def parse_hold(value: str | None, settings: ProxySettings) -> float:
    if value is None:
        return settings.hold_timeout
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise TargetError(
            400, f"header {HEADER_ACTIVATOR_HOLD_TIMEOUT}: {value!r} is not a positive number"
        )
    return min(seconds, settings.max_hold_timeout)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "code": status}, status=status)


class Activator:
    def __init__(
        self,
        *,
        settings: ProxySettings,
        endpoints: Endpoints,
        services: ServiceLookup,
        waker: Waker,
        metrics: Metrics,
        session: aiohttp.ClientSession,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.services = services
        self.waker = waker
        self.metrics = metrics
        self.session = session

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key: Key | None = None
        status = 500
        try:
            key = parse_target(request.headers.get(HEADER_ACTIVATOR_TARGET))
            hold = parse_hold(request.headers.get(HEADER_ACTIVATOR_HOLD_TIMEOUT), self.settings)
            if self.settings.namespaces and key[0] not in self.settings.namespaces:
                raise TargetError(
                    404,
                    f"namespace {key[0]} is not served by this activator (it serves "
                    f"{', '.join(sorted(self.settings.namespaces))})",
                )
            endpoint = self.endpoints.pick(key)
            if endpoint is None:
                endpoint = await self._hold(key, hold)
            response = await self._forward(request, key, endpoint)
            status = response.status
            return response
        except TargetError as err:
            status = err.status
            if status != 504:
                key = None  # unknown or malformed: no per-target label (bounded cardinality)
            return _json_error(err.status, err.message)
        finally:
            namespace, service = key or ("", "")
            self.metrics.requests.labels(namespace, service, str(status)).inc()

    async def _hold(self, key: Key, hold: float) -> Endpoint:
        namespace, service = key
        if not self.endpoints.known(key) and not await self.services.exists(key):
            raise TargetError(404, f"no Service {namespace}/{service}: unknown target")
        extra = {"namespace": namespace, "service": service, "hold_timeout_s": hold}
        log.info("holding a request for %s/%s: no ready endpoint", namespace, service, extra=extra)
        pending = self.metrics.pending.labels(namespace, service)
        pending.inc()
        self.waker.wake(key)
        started = asyncio.get_running_loop().time()
        try:
            endpoint = await self.endpoints.wait_ready(key, hold)
        finally:
            pending.dec()
        waited = asyncio.get_running_loop().time() - started
        if endpoint is None:
            log.warning(
                "gave up on %s/%s after %.1fs: no ready endpoint",
                namespace,
                service,
                waited,
                extra=extra,
            )
            raise TargetError(
                504,
                f"{namespace}/{service} has no ready endpoint after {hold:g}s: it is still "
                "scaling from zero (or cannot start); try again later",
            )
        self.metrics.hold_seconds.labels(namespace, service).observe(waited)
        log.info(
            "released a held request for %s/%s to %s after %.2fs",
            namespace,
            service,
            endpoint,
            waited,
            extra={**extra, "endpoint": str(endpoint), "held_s": round(waited, 3)},
        )
        return endpoint

    def _address(self, endpoint: Endpoint) -> tuple[str, int]:
        connect_to = self.settings.connect_to
        for candidate in ((endpoint.host, endpoint.port), ("*", endpoint.port)):
            if candidate in connect_to:
                return connect_to[candidate]
        return endpoint.host, endpoint.port

    async def _forward(
        self, request: web.Request, key: Key, endpoint: Endpoint
    ) -> web.StreamResponse:
        host, port = self._address(endpoint)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        url = f"http://{netloc}{request.rel_url}"
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        peer = request.remote or ""
        forwarded_for = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded_for}, {peer}" if forwarded_for else peer
        body = request.content if request.body_exists else None
        inflight = self.metrics.inflight.labels(*key)
        inflight.inc()
        response: web.StreamResponse | None = None
        try:
            async with self.session.request(
                request.method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as upstream:
                response = web.StreamResponse(
                    status=upstream.status,
                    reason=upstream.reason,
                    headers=CIMultiDict(
                        (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
                    ),
                )
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except aiohttp.ClientError as err:
            if response is not None and response.prepared:
                # Part of the answer is out: cut the connection so the client sees it broke.
                log.warning("%s/%s: the answer from %s broke off: %r", *key, endpoint, err)
                if request.transport is not None:
                    request.transport.close()
                return response
            log.warning(
                "cannot forward to %s/%s at %s: %r",
                *key,
                endpoint,
                err,
                extra={"namespace": key[0], "service": key[1], "endpoint": str(endpoint)},
            )
            raise TargetError(
                502, f"{key[0]}/{key[1]}: endpoint {endpoint} cannot be reached: {err}"
            ) from None
        finally:
            inflight.dec()


def create_app(activator: Activator) -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", activator.handle)
    return app
