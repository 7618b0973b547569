"""``kserve-stack-controller``: the operator (kopf), its admission webhooks and health port.

One settings object is built from the command line and flows into the operator, the
handlers and the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kopf

from kserve_stack_controller import memory, relisting
from kserve_stack_controller.builtin_runtimes import install_builtin_runtimes
from kserve_stack_controller.cache import PAGE, prime
from kserve_stack_controller.config import CONFIGMAP_NAME
from kserve_stack_controller.constants import FIELD_MANAGER
from kserve_stack_controller.handlers import (
    caching,
    configmap,
    inferenceservice,
    servingruntime,
)
from kserve_stack_controller.kube import Kube
from kserve_stack_controller.server import health_app, start_site, tls_context, webhook_app
from kserve_stack_controller.state import Operator, Settings
from kserve_stack_controller.webhook_tls import ensure_secret, inject_ca_bundle
from kserve_stack_controller.webhooks import webhook_configurations

log = logging.getLogger("kserve_stack_controller")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kserve-stack-controller",
        description="Reconcile KServe InferenceServices (Standard/RawDeployment mode) into "
        "Deployments, Services, autoscalers and routes; serve the admission webhooks.",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="Watch InferenceServices in this namespace only; repeat for several "
        "(default: every namespace; env WATCH_NAMESPACES, comma-separated).",
    )
    parser.add_argument(
        "--config-namespace",
        default=os.environ.get("POD_NAMESPACE", "kserve"),
        help=f"Namespace of the ConfigMap {CONFIGMAP_NAME} (default: $POD_NAMESPACE or "
        "kserve). Absent: built-in defaults; changes apply without restart.",
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="Kubeconfig to use outside a cluster (default: $KUBECONFIG, "
        "then in-cluster credentials, then ~/.kube/config).",
    )
    hooks = parser.add_argument_group("admission webhooks")
    hooks.add_argument(
        "--webhook-cert-dir",
        default=None,
        help="Directory with tls.crt and tls.key; serves /mutate and /validate "
        "over HTTPS. Unset (and no --webhook-secret): no webhook server.",
    )
    hooks.add_argument(
        "--webhook-secret",
        default=None,
        metavar="NAME",
        help="In a cluster: keep the webhook server's CA and certificate (for the Service "
        "--webhook-service) in this Secret of --webhook-namespace, made on first start and "
        "renewed 30 days before it expires, serve with it and write its CA into the "
        "caBundle of the webhook configurations named --webhook-config-name.",
    )
    hooks.add_argument(
        "--webhook-service",
        default="kserve-stack-webhook",
        help="The Service in front of the webhook server, named in the certificate "
        "(default: %(default)s).",
    )
    hooks.add_argument(
        "--webhook-namespace",
        default=os.environ.get("POD_NAMESPACE", "kserve"),
        help="Namespace of --webhook-secret and --webhook-service (default: $POD_NAMESPACE "
        "or kserve).",
    )
    hooks.add_argument(
        "--webhook-host",
        default="0.0.0.0",
        help="Address the webhook server binds (default: %(default)s).",
    )
    hooks.add_argument(
        "--webhook-port",
        type=int,
        default=9443,
        help="Port of the webhook server (default: %(default)s).",
    )
    hooks.add_argument(
        "--webhook-url",
        default=None,
        help="Register the webhooks by URL at start: the base URL the API "
        "server calls (e.g. https://127.0.0.1:9443), its CA taken from ca.crt "
        "in --webhook-cert-dir (else tls.crt). Unset: register them yourself "
        "(kustomize/controller installs them by Service, with --webhook-secret).",
    )
    hooks.add_argument(
        "--webhook-config-name",
        default="kserve-stack-webhook",
        help="Name of the (Mutating|Validating)WebhookConfiguration that "
        "--webhook-url writes, or whose caBundle --webhook-secret fills in "
        "(default: %(default)s).",
    )
    runtimes = parser.add_argument_group("built-in runtimes")
    runtimes.add_argument(
        "--install-builtin-runtimes",
        action="store_true",
        help="Server-side apply the built-in ClusterServingRuntimes (kserve-sklearnserver, "
        "kserve-xgbserver, kserve-lgbserver) at start, as this version ships them.",
    )
    runtimes.add_argument(
        "--runtime-image",
        default=None,
        metavar="IMAGE",
        help="Image of the built-in runtimes' containers (default: the one they name, "
        "kserve-stack/runtimes:<version>).",
    )
    ops = parser.add_argument_group("operations")
    ops.add_argument(
        "--health-host",
        default="0.0.0.0",
        help="Address of /healthz, /readyz and /metrics (default: %(default)s).",
    )
    ops.add_argument(
        "--health-port",
        type=int,
        default=8081,
        help="Port of /healthz, /readyz and /metrics; 0 disables (default: %(default)s).",
    )
    ops.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Verbosity of the logs (default: $LOG_LEVEL or INFO).",
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    namespaces = list(args.namespace)
    if not namespaces and os.environ.get("WATCH_NAMESPACES"):
        namespaces = [n for n in os.environ["WATCH_NAMESPACES"].split(",") if n]
    return Settings(
        namespaces=namespaces,
        config_namespace=args.config_namespace,
        webhook_host=args.webhook_host,
        webhook_port=args.webhook_port,
        webhook_cert_dir=args.webhook_cert_dir,
        webhook_url=args.webhook_url,
        webhook_config_name=args.webhook_config_name,
        webhook_secret=args.webhook_secret,
        install_runtimes=args.install_builtin_runtimes,
        runtime_image=args.runtime_image,
        webhook_service=args.webhook_service,
        webhook_namespace=args.webhook_namespace,
        health_host=args.health_host,
        health_port=args.health_port,
        log_level=args.log_level,
        kubeconfig=args.kubeconfig,
    )


def connection_info(kube: Kube) -> kopf.ConnectionInfo:
    """kopf's credentials from the client the reconciler uses (one login for both)."""
    config = kube.api_client.configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").partition(" ")
    if header and not token:
        scheme, token = "", header
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )


async def run(settings: Settings) -> None:
    kube = Kube.from_environment(settings.kubeconfig)
    operator = Operator(kube, settings)
    found = await asyncio.to_thread(
        kube.get, "ConfigMap", CONFIGMAP_NAME, settings.config_namespace
    )
    operator.load_config((found or {}).get("data"))
    if found is None:
        log.info(
            "no ConfigMap %s/%s: using the built-in defaults",
            settings.config_namespace,
            CONFIGMAP_NAME,
        )

    if settings.install_runtimes:
        await asyncio.to_thread(install_builtin_runtimes, kube, settings.runtime_image)

    registry = kopf.OperatorRegistry()
    caching.register(registry, operator)  # first: the others' handlers read the cache
    inferenceservice.register(registry, operator)
    servingruntime.register(registry, operator)
    configmap.register(registry, operator)

    runners = []
    if settings.health_port:
        runners.append(
            await start_site(
                health_app(lambda: operator.started, operator.metrics),
                settings.health_host,
                settings.health_port,
            )
        )
        log.info("health and metrics on http://%s:%d", settings.health_host, settings.health_port)
    ca_to_inject: bytes | None = None
    if settings.webhook_secret:
        material = await asyncio.to_thread(
            ensure_secret,
            kube,
            settings.webhook_secret,
            settings.webhook_namespace,
            settings.webhook_service,
        )
        settings.webhook_cert_dir = str(material.write(Path(tempfile.mkdtemp(prefix="kss-tls-"))))
        ca_to_inject = material.ca_pem
    if settings.webhook_cert_dir:
        cert_dir = Path(settings.webhook_cert_dir)
        runners.append(
            await start_site(
                webhook_app(operator.config, operator.metrics),
                settings.webhook_host,
                settings.webhook_port,
                tls_context(cert_dir),
            )
        )
        log.info(
            "admission webhooks on https://%s:%d (/mutate, /validate)",
            settings.webhook_host,
            settings.webhook_port,
        )
        if settings.webhook_url:
            ca = cert_dir / "ca.crt" if (cert_dir / "ca.crt").is_file() else cert_dir / "tls.crt"
            for obj in webhook_configurations(settings, ca.read_bytes()):
                await asyncio.to_thread(kube.apply, obj, FIELD_MANAGER)
            log.info(
                "registered webhooks %s at %s", settings.webhook_config_name, settings.webhook_url
            )
        elif ca_to_inject is not None:
            kinds = await asyncio.to_thread(
                inject_ca_bundle, kube, settings.webhook_config_name, ca_to_inject
            )
            if kinds:
                log.info("CA written into %s %s", " and ".join(kinds), settings.webhook_config_name)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(loop_exception_handler)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    watched = (
        sorted({*settings.namespaces, settings.config_namespace}) if settings.namespaces else []
    )

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(kube)  # the same kubeconfig / in-cluster account

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # events are posted by the reconciler, once each
        settings.persistence.finalizer = "serving.kserve.io/kserve-stack-controller"
        # What was handled is remembered in memory, not written onto each object; a retry's
        # progress (rare) is kept in annotations only (InferenceService status has no room).
        settings.persistence.diffbase_storage = operator.handled
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
        settings.execution.max_workers = 8
        settings.watching.server_timeout = 300
        # Lists in pages at start (1,000 InferenceServices are megabytes of JSON at once).
        settings.watching.chunk_size = PAGE

    # Last before kopf: its watches bring every change after this listing.
    await asyncio.to_thread(prime, kube, operator.cache, settings.namespaces)

    ready_flag = asyncio.Event()

    async def mark_started() -> None:
        await ready_flag.wait()
        operator.started = True
        log.info("watching %s", ", ".join(settings.namespaces) or "every namespace")

    starter = asyncio.create_task(mark_started())
    trimmer = asyncio.create_task(memory.trim_while_busy(operator.metrics.reconcile_count))
    try:
        with relisting.reported(caching.listing_handler(operator)):
            await kopf.operator(
                registry=registry,
                standalone=True,
                clusterwide=not watched,
                namespaces=watched,
                ready_flag=ready_flag,
                stop_flag=stop,
            )
    finally:
        for task in (starter, trimmer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for runner in runners:
            await runner.cleanup()
        if not await asyncio.to_thread(operator.reconciler.events.flush, 5.0):
            log.warning("stopped with events not yet posted")
        log.info("stopped")


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's handler of errors nothing awaited, kopf's watch streams closed at exit aside.

    Stopped while a watch stream is still opening (a SIGTERM just after start), kopf leaves the
    stream's async generator suspended; ``asyncio.run`` closes it on the way out, and kopf's
    streaming context manager then fails with "generator didn't stop after athrow()". Nothing
    is lost (the operator is stopping, the stream is discarded): one line says so instead of two
    tracebacks. Every other error goes to asyncio's own handler.
    """
    generator = context.get("asyncgen")
    code = getattr(generator, "ag_code", None)
    if code is not None and f"{os.sep}kopf{os.sep}" in code.co_filename:
        log.warning(
            "a kopf watch stream failed to close at shutdown (%s: %s); nothing was lost",
            code.co_name,
            context.get("exception") or context.get("message"),
        )
        return
    loop.default_exception_handler(context)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if settings.log_level != "DEBUG":  # one line per handler call is noise; ours say more
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        memory.limit_arenas()  # before any thread starts
        asyncio.run(run(settings))
    except FileNotFoundError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
