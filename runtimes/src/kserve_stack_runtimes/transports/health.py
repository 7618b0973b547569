"""gRPC health checking (``grpc.health.v1.Health``) for the gRPC transport.

Its own module because Watch is an async generator, which mypyc does not compile: the rest of
the gRPC transport is compiled in wheels (runtimes/setup.py), this module is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from kserve_stack_runtimes.transports.h2grpc import RpcContext

HEALTH_SERVICE_NAME = "grpc.health.v1.Health"


class HealthService:
    """``grpc.health.v1.Health``: Check and Watch, for the server ("") and the inference service."""

    def __init__(self) -> None:
        self._status: dict[str, int] = {}
        self._changed = asyncio.Event()

    def set(self, service: str, status: int) -> None:
        if self._status.get(service) != status:
            self._status[service] = status
            self._changed.set()
            self._changed = asyncio.Event()

    async def Check(self, request: Any, context: RpcContext) -> Any:  # noqa: N802
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Unknown service {request.service!r}.")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: RpcContext) -> AsyncIterator[Any]:  # noqa: N802
        last: int | None = None
        while True:
            changed = self._changed
            status = self._status.get(
                request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            await changed.wait()
