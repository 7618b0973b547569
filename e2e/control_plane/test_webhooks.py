"""Admission webhooks: the API server calls a validating webhook served by this
test on 127.0.0.1 (a URL webhook with its own CA), which rejects one object with
its message and admits another."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kss_e2e import Cluster, Kube, make_tls, wait_for
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.control_plane

REJECT_MESSAGE = "e2e policy: a ConfigMap may not carry verdict=reject"


class _Reviews:
    """What the webhook saw: (operation, name, allowed) per AdmissionReview."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()


def _handler(reviews: _Reviews) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            req = body["request"]
            obj = req.get("object") or {}
            allowed = (obj.get("data") or {}).get("verdict") != "reject"
            response: dict[str, Any] = {"uid": req["uid"], "allowed": allowed}
            if not allowed:
                response["status"] = {"code": 403, "reason": "Forbidden", "message": REJECT_MESSAGE}
            with reviews.lock:
                reviews.seen.append((req["operation"], req.get("name", ""), allowed))
            payload = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": response,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    return Handler


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[str, str, _Reviews]]:
    """(url, caBundle, reviews) of an HTTPS validating webhook on 127.0.0.1."""
    tls = make_tls(tmp_path / "tls")
    reviews = _Reviews()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reviews))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/validate", tls.ca_bundle_b64(), reviews
    finally:
        server.shutdown()
        server.server_close()


def _configmap(name: str, verdict: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={"e2e-webhook": "true"}),
        data={"verdict": verdict},
    )


def test_url_webhook_rejects_with_its_message_and_admits(
    kube: Kube,
    cluster: Cluster,
    namespace: str,
    webhook_server: tuple[str, str, _Reviews],
) -> None:
    if not cluster.api_server_is_local:
        pytest.skip(
            f"the {cluster.backend} API server cannot reach a webhook on this host's 127.0.0.1"
        )
    url, ca_bundle, reviews = webhook_server
    config_name = f"{namespace}-verdict"
    kube.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": config_name},
            "webhooks": [
                {
                    "name": "verdict.e2e.kserve-stack.io",
                    "clientConfig": {"url": url, "caBundle": ca_bundle},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["configmaps"],
                            "scope": "Namespaced",
                        }
                    ],
                    # Only this test's objects: other namespaces and tests are untouched.
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "objectSelector": {"matchLabels": {"e2e-webhook": "true"}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    try:
        # The API server picks the configuration up asynchronously: probe with
        # dry-run requests (webhooks without side effects see them) until it bites.
        def enforced() -> bool:
            try:
                kube.core.create_namespaced_config_map(
                    namespace, _configmap("probe", "reject"), dry_run="All"
                )
            except ApiException as err:
                return err.status == 403 and REJECT_MESSAGE in err.body
            return False

        wait_for("the webhook configuration to be enforced", enforced, timeout=30)

        with pytest.raises(ApiException) as rejected:
            kube.core.create_namespaced_config_map(namespace, _configmap("bad", "reject"))
        assert rejected.value.status == 403
        status = json.loads(rejected.value.body)
        assert REJECT_MESSAGE in status["message"]
        assert (
            'admission webhook "verdict.e2e.kserve-stack.io" denied the request'
            in status["message"]
        )

        created = kube.core.create_namespaced_config_map(namespace, _configmap("good", "accept"))
        assert created.metadata.uid
        with reviews.lock:
            seen = list(reviews.seen)
        assert ("CREATE", "bad", False) in seen
        assert ("CREATE", "good", True) in seen
        names = {cm.metadata.name for cm in kube.core.list_namespaced_config_map(namespace).items}
        assert "good" in names and "bad" not in names
    finally:
        kube.admission.delete_validating_webhook_configuration(config_name)
