"""The model server: REST and gRPC listeners over one data plane, one or more worker processes.

Shutdown on SIGTERM (or SIGINT) is graceful: readiness turns off at once (``/v2/health/ready``
and the gRPC health service say not serving), requests already in flight are drained (for at most
``graceful_shutdown_timeout`` seconds, and new ones that still arrive are served), then the
listeners close and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop

from kserve_stack_runtimes import logs
from kserve_stack_runtimes.dataplane import DataPlane
from kserve_stack_runtimes.metrics import Metrics
from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.repository import ModelFactory, ModelRepository
from kserve_stack_runtimes.settings import ServerSettings
from kserve_stack_runtimes.transports.access import AccessLog
from kserve_stack_runtimes.transports.http1 import HttpServer
from kserve_stack_runtimes.transports.rest import RestApp

log = logging.getLogger("kserve_stack_runtimes.server")


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def _flush_logs_periodically(period: float = 0.1) -> None:
    while True:
        await asyncio.sleep(period)
        logs.flush()


class ModelServer:
    """Serves models over REST (V1, V2) and gRPC (Open Inference Protocol).

    >>> ModelServer(ServerSettings(http_port=8080)).start([MyModel("my-model")])
    """

    def __init__(
        self, settings: ServerSettings | None = None, factory: ModelFactory | None = None
    ) -> None:
        self.settings = settings or ServerSettings()
        self.factory = factory
        self._shutdown: asyncio.Event | None = None
        #: Set by a second signal: stop without waiting for requests in flight.
        self._force = False
        self._drainer: asyncio.Task[None] | None = None

    # -- entry point -------------------------------------------------------------------------
    def start(self, models: Sequence[Model]) -> None:
        """Serve ``models`` until SIGTERM/SIGINT. Models not yet ready are loaded first."""
        if self.settings.configure_logging:
            logs.configure(self.settings.log_level, self.settings.log_config_file)
        if not models:
            raise ValueError("ModelServer.start needs at least one model.")
        if self.settings.workers > 1:
            sys.exit(self._run_workers(models))
        self._run(models)

    def _run(self, models: Sequence[Model]) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self.serve(models))

    # -- one process -------------------------------------------------------------------------
    async def serve(self, models: Sequence[Model]) -> None:
        """Run the listeners in the current event loop until shutdown completes."""
        s = self.settings
        loop = asyncio.get_running_loop()
        if s.max_asyncio_workers:
            loop.set_default_executor(ThreadPoolExecutor(max_workers=s.max_asyncio_workers))
        repository = ModelRepository(self.factory)
        for model in models:
            repository.add(model)
        dataplane = DataPlane(repository, Metrics(), latency_logging=s.enable_latency_logging)
        app = RestApp(dataplane, s)
        # One process listens at once and loads behind it, so liveness answers during a long
        # load. Workers share the port (SO_REUSEPORT): each one loads first and only then
        # listens, or the kernel would hand it connections it can only answer with 503.
        shared_port = s.workers > 1
        if shared_port:
            await self._load_all(repository)
        sock = _bind(s.host, s.http_port, reuse_port=shared_port)
        http_server = HttpServer(app, sock, max_body=s.max_request_body_bytes)
        grpc_server: Any = None
        if s.enable_grpc:
            from kserve_stack_runtimes.transports.grpc import GrpcServer  # noqa: PLC0415

            grpc_server = GrpcServer(
                dataplane,
                s.host,
                s.grpc_port,
                s.max_request_body_bytes,
                reuse_port=shared_port,
                access_log=AccessLog(s),
            )
            await grpc_server.start()
        self._shutdown = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig, dataplane, grpc_server)
        await http_server.start()
        log.info(
            "listening: REST on %s:%d%s",
            s.host,
            sock.getsockname()[1],
            f", gRPC on {s.host}:{grpc_server.port}" if grpc_server else "",
        )
        flusher = asyncio.create_task(_flush_logs_periodically())
        if not shared_port:
            await self._load_all(repository)
        if grpc_server is not None:
            await grpc_server.set_serving(dataplane.ready())
        await self._shutdown.wait()
        # Requests in flight were drained (or the drain timed out, or a second signal came).
        grace = 0.0 if self._force else 1.0
        await http_server.stop(grace)
        if grpc_server is not None:
            await grpc_server.stop(grace)
        flusher.cancel()
        log.info("server stopped")
        logs.flush()

    async def _load_all(self, repository: ModelRepository) -> None:
        for model in repository.models():
            if model.ready:
                continue
            started = time.perf_counter()
            if not await model.run_load():
                raise RuntimeError(f"Model {model.name!r} did not become ready after load().")
            log.info("model %s loaded in %.3f s", model.name, time.perf_counter() - started)
        log.info("ready: serving models %s", ", ".join(repository.names()))

    def _on_signal(self, sig: int, dataplane: DataPlane, grpc_server: Any) -> None:
        assert self._shutdown is not None
        if not dataplane.accepting:
            log.warning("second %s: exiting without waiting", signal.Signals(sig).name)
            self._force = True
            self._shutdown.set()
            return
        dataplane.accepting = False
        log.info(
            "%s: readiness off, draining %d in-flight requests",
            signal.Signals(sig).name,
            dataplane.inflight,
        )
        self._drainer = asyncio.get_running_loop().create_task(self._drain(dataplane, grpc_server))

    async def _drain(self, dataplane: DataPlane, grpc_server: Any) -> None:
        if grpc_server is not None:
            await grpc_server.set_serving(False)
        deadline = time.monotonic() + self.settings.graceful_shutdown_timeout
        while dataplane.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if dataplane.inflight:
            log.warning("drain timed out with %d requests in flight", dataplane.inflight)
        else:
            log.info("drained; closing listeners")
        assert self._shutdown is not None
        self._shutdown.set()

    # -- several processes -------------------------------------------------------------------
    def _run_workers(self, models: Sequence[Model]) -> int:
        """Fork ``workers`` processes sharing the ports (SO_REUSEPORT); forward signals to them."""
        os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="kserve-stack-metrics-")
        )
        ctx = multiprocessing.get_context("fork")
        procs = [
            ctx.Process(target=self._worker_main, args=(models,), name=f"worker-{i}")
            for i in range(self.settings.workers)
        ]
        for proc in procs:
            proc.start()
        log.info("started %d workers: %s", len(procs), [p.pid for p in procs])

        def forward(sig: int, _frame: Any) -> None:
            for proc in procs:
                if proc.pid is not None and proc.is_alive():
                    os.kill(proc.pid, sig)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for proc in procs:
            proc.join()
        codes = [p.exitcode for p in procs]
        log.info("workers exited with %s", codes)
        return 0 if all(c == 0 for c in codes) else 1

    def _worker_main(self, models: Sequence[Model]) -> None:
        from prometheus_client import values  # noqa: PLC0415

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            self._run(models)
        finally:
            logs.flush()  # a forked worker ends in os._exit: no atexit flush
