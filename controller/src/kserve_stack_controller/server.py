"""HTTP servers of the controller: the admission webhooks (HTTPS, from a cert dir) and the
health / metrics endpoints (plain HTTP)."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from kserve_stack_controller.admission import ConfigSource, review
from kserve_stack_controller.metrics import Metrics

log = logging.getLogger(__name__)


def webhook_app(config: ConfigSource, metrics: Metrics) -> web.Application:
    async def handle(request: web.Request, mutate: bool) -> web.Response:
        name = "mutate" if mutate else "validate"
        try:
            body = await request.json()
            answer = review(body, config(), mutate)
        except (ValueError, json.JSONDecodeError) as err:
            return web.json_response({"error": f"bad AdmissionReview: {err}"}, status=400)
        allowed = bool(answer["response"]["allowed"])
        metrics.admitted(name, allowed)
        if not allowed:
            log.info("denied %s: %s", name, answer["response"]["status"]["message"])
        return web.json_response(answer)

    async def mutate(request: web.Request) -> web.Response:
        return await handle(request, True)

    async def validate(request: web.Request) -> web.Response:
        return await handle(request, False)

    app = web.Application()
    app.router.add_post("/mutate", mutate)
    app.router.add_post("/validate", validate)
    return app


def health_app(ready: Callable[[], bool], metrics: Metrics) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(
            text="not ready: the operator has not started watching yet\n", status=503
        )

    async def metrics_text(_request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    return app


def tls_context(cert_dir: Path) -> ssl.SSLContext:
    """A server context from ``tls.crt`` / ``tls.key`` in ``cert_dir`` (cert-manager's names)."""
    cert, key = cert_dir / "tls.crt", cert_dir / "tls.key"
    for path in (cert, key):
        if not path.is_file():
            raise FileNotFoundError(f"webhook cert dir {cert_dir}: {path.name} is missing")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


async def start_site(
    app: web.Application, host: str, port: int, context: ssl.SSLContext | None = None
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    return runner
