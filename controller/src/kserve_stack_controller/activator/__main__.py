"""``kserve-stack-activator``: flags, one settings object, the proxy and the metrics servers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kserve_stack_controller.activator import logs
from kserve_stack_controller.activator.endpoints import Endpoints, ServiceDirectory, SliceWatcher
from kserve_stack_controller.activator.metrics import Metrics
from kserve_stack_controller.activator.proxy import Activator, ProxySettings, Waker, create_app
from kserve_stack_controller.activator.wake import NoWaker, ScaleWaker
from kserve_stack_controller.constants import (
    ACTIVATOR_PENDING_METRIC,
    HEADER_ACTIVATOR_HOLD_TIMEOUT,
    HEADER_ACTIVATOR_TARGET,
    LABEL_ISVC,
)
from kserve_stack_controller.kube import Kube

log = logging.getLogger("kserve_stack_controller.activator")


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    metrics_host: str
    metrics_port: int
    kubeconfig: str | None
    namespaces: tuple[str, ...]
    selector: str
    port_name: str
    wake: str
    proxy: ProxySettings
    connect_timeout: float
    max_connections: int
    log_level: str


def _connect_to(value: str) -> tuple[tuple[str, int], tuple[str, int]]:
    try:
        source, target = value.split("=", 1)
        src_host, src_port = source.rsplit(":", 1)
        dst_host, dst_port = target.rsplit(":", 1)
        if not src_host or not dst_host:
            raise ValueError
        return (src_host, int(src_port)), (dst_host, int(dst_port))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not HOST:PORT=HOST2:PORT2 (HOST may be *)"
        ) from None


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kserve-stack-activator",
        description="Hold requests for InferenceService components at zero replicas until a "
        "replica is ready, then forward them. The HTTPRoute names the target in the header "
        f"{HEADER_ACTIVATOR_TARGET}: NAMESPACE/SERVICE; held requests are counted in the gauge "
        f"{ACTIVATOR_PENDING_METRIC}{{namespace,service}}, which the ScaledObject's activation "
        "trigger reads.",
    )
    serve = parser.add_argument_group("serving")
    serve.add_argument(
        "--host", default="0.0.0.0", help="Proxy bind address (default: %(default)s)."
    )
    serve.add_argument("--port", type=int, default=8080, help="Proxy port (default: %(default)s).")
    serve.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        help="Bind address of /metrics, /healthz and /readyz (default: %(default)s).",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="Port of /metrics, /healthz and /readyz (default: %(default)s).",
    )
    hold = parser.add_argument_group("holding")
    hold.add_argument(
        "--hold-timeout",
        type=_positive,
        default=300.0,
        help=f"Seconds to hold a request without the {HEADER_ACTIVATOR_HOLD_TIMEOUT} header "
        "before answering 504 (default: %(default)s).",
    )
    hold.add_argument(
        "--max-hold-timeout",
        type=_positive,
        default=900.0,
        help=f"Upper bound of {HEADER_ACTIVATOR_HOLD_TIMEOUT} (default: %(default)s).",
    )
    hold.add_argument(
        "--wake",
        choices=["metric", "scale"],
        default="metric",
        help="How a held request wakes its Deployment: 'metric' only raises the pending gauge "
        "(KEDA scales up); 'scale' also patches the Deployment named like the Service from 0 "
        "to 1 replica (needs patch on deployments/scale; for clusters without KEDA, or to "
        "skip the scrape and polling delays) (default: %(default)s).",
    )
    kube = parser.add_argument_group("kubernetes")
    kube.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="Kubeconfig outside a cluster (default: $KUBECONFIG; in a pod: its account).",
    )
    kube.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="Serve targets in this namespace only (one EndpointSlice watch each); repeat for "
        "several (default: every namespace, one cluster-wide watch).",
    )
    kube.add_argument(
        "--endpointslice-selector",
        default=LABEL_ISVC,
        help="Label selector of the EndpointSlices watched; they carry their Service's "
        "labels, so the default keeps to InferenceService components ('' watches every "
        "EndpointSlice) (default: %(default)s).",
    )
    kube.add_argument(
        "--port-name",
        default="http",
        help="Name of the Service port to forward to; a slice with one port uses it whatever "
        "its name (default: %(default)s).",
    )
    upstream = parser.add_argument_group("forwarding")
    upstream.add_argument(
        "--connect-timeout",
        type=_positive,
        default=5.0,
        help="Seconds to connect to an endpoint before answering 502 (default: %(default)s).",
    )
    upstream.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="Size of the shared connection pool to the endpoints (default: %(default)s).",
    )
    upstream.add_argument(
        "--connect-to",
        type=_connect_to,
        action="append",
        default=[],
        metavar="HOST:PORT=HOST2:PORT2",
        help="Connect to HOST2:PORT2 when an EndpointSlice names HOST:PORT (HOST may be *). "
        "For tests and debugging, like curl's --connect-to: e.g. simulated pods whose "
        "containers run as local processes. Repeatable.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Verbosity of the JSON logs (default: $LOG_LEVEL or INFO).",
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    if args.max_hold_timeout < args.hold_timeout:
        raise SystemExit("--max-hold-timeout must not be below --hold-timeout")
    return Settings(
        host=args.host,
        port=args.port,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        kubeconfig=args.kubeconfig,
        namespaces=tuple(args.namespace),
        selector=args.endpointslice_selector,
        port_name=args.port_name,
        wake=args.wake,
        proxy=ProxySettings(
            hold_timeout=args.hold_timeout,
            max_hold_timeout=args.max_hold_timeout,
            namespaces=frozenset(args.namespace),
            connect_to=dict(args.connect_to),
        ),
        connect_timeout=args.connect_timeout,
        max_connections=args.max_connections,
        log_level=args.log_level,
    )


def metrics_app(metrics: Metrics, endpoints: Endpoints, scopes: Sequence[str]) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        missing = [s or "every namespace" for s in scopes if s not in endpoints.synced]
        if missing:
            return web.json_response(
                {"status": "not ready", "error": f"EndpointSlices not listed yet: {missing}"},
                status=503,
            )
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def run(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    api_client = Kube.from_environment(settings.kubeconfig).api_client
    metrics = Metrics()
    endpoints = Endpoints()
    scopes = list(settings.namespaces) or [""]
    watchers = [
        SliceWatcher(
            api_client,
            namespace=scope or None,
            selector=settings.selector,
            port_name=settings.port_name,
            endpoints=endpoints,
            loop=loop,
        )
        for scope in scopes
    ]
    for watcher in watchers:
        watcher.start()
    waker: Waker = ScaleWaker(api_client, metrics) if settings.wake == "scale" else NoWaker()
    connector = aiohttp.TCPConnector(limit=settings.max_connections)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        activator = Activator(
            settings=settings.proxy,
            endpoints=endpoints,
            services=ServiceDirectory(api_client),
            waker=waker,
            metrics=metrics,
            session=session,
        )
        proxy_runner = web.AppRunner(
            create_app(activator), handler_cancellation=True, access_log=None
        )
        metrics_runner = web.AppRunner(metrics_app(metrics, endpoints, scopes), access_log=None)
        await proxy_runner.setup()
        await metrics_runner.setup()
        await web.TCPSite(proxy_runner, settings.host, settings.port).start()
        if settings.metrics_port:
            await web.TCPSite(metrics_runner, settings.metrics_host, settings.metrics_port).start()
        log.info(
            "activator on http://%s:%d (metrics on :%d), watching EndpointSlices in %s",
            settings.host,
            settings.port,
            settings.metrics_port,
            ", ".join(settings.namespaces) or "every namespace",
            extra={"wake": settings.wake, "selector": settings.selector},
        )
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            for watcher in watchers:
                watcher.stop()
            await proxy_runner.cleanup()
            await metrics_runner.cleanup()
    with contextlib.suppress(Exception):
        api_client.close()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    logs.configure(settings.log_level)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
