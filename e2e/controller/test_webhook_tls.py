"""In-cluster webhook TLS on the real API server: the controller makes its certificate
Secret on first start, fills the caBundle of the webhook configurations the installer
applied (by Service), serves a certificate the API server's way of checking accepts, reuses
the Secret on restart and renews a Secret that no longer fits."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kserve_stack_controller.state import Settings
from kserve_stack_controller.webhook_tls import dns_names, make_material
from kserve_stack_controller.webhooks import webhook_configurations
from kss_e2e import Cluster, Kube, answers, free_ports, wait_for
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.control_plane

CONTROLLER = Path(sys.executable).parent / "kserve-stack-controller"
SECRET, SERVICE = "kss-webhook-tls", "kss-webhook"


@pytest.fixture
def configs(kube: Kube, namespace: str) -> Iterator[str]:
    """The webhook configurations as an installer applies them: by Service, no caBundle
    (scoped to the test's namespace, where nothing is admitted meanwhile)."""
    name = f"kss-tls-{namespace}"
    settings = Settings(namespaces=[namespace], webhook_config_name=name,
                        webhook_service=SERVICE, webhook_namespace=namespace)  # fmt: skip
    kube.apply(webhook_configurations(settings))
    yield name
    for delete in (kube.admission.delete_mutating_webhook_configuration,
                   kube.admission.delete_validating_webhook_configuration):  # fmt: skip
        with contextlib.suppress(ApiException):
            delete(name)


def _run_controller(cluster: Cluster, namespace: str, config_name: str, log: Path
                    ) -> tuple[subprocess.Popen[bytes], int]:  # fmt: skip
    webhook_port, health_port = free_ports(2)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(CONTROLLER), "--namespace", namespace, "--config-namespace", namespace,
             "--kubeconfig", str(cluster.kubeconfig), "--webhook-secret", SECRET,
             "--webhook-service", SERVICE, "--webhook-namespace", namespace,
             "--webhook-config-name", config_name, "--webhook-host", "127.0.0.1",
             "--webhook-port", str(webhook_port), "--health-host", "127.0.0.1",
             "--health-port", str(health_port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip

    url = f"http://127.0.0.1:{health_port}/readyz"
    wait_for(
        "the controller to be ready", lambda: answers(process, log, url, "controller"), timeout=60
    )
    return process, webhook_port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _served_cert_verifies(port: int, ca_pem: bytes, hostname: str) -> bool:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=hostname),
    ):
        return True  # the handshake raises when the certificate does not verify


def test_controller_makes_reuses_and_renews_its_webhook_certificate(
    kube: Kube, cluster: Cluster, namespace: str, configs: str, tmp_path: Path
) -> None:
    log = tmp_path / "controller.log"
    process, port = _run_controller(cluster, namespace, configs, log)
    try:
        secret = kube.core.read_namespaced_secret(SECRET, namespace)
        assert secret.type == "kubernetes.io/tls"
        ca_pem = base64.b64decode(secret.data["ca.crt"])
        for config in (kube.admission.read_mutating_webhook_configuration(configs),
                       kube.admission.read_validating_webhook_configuration(configs)):  # fmt: skip
            bundles = {base64.b64decode(h.client_config.ca_bundle) for h in config.webhooks}
            assert bundles == {ca_pem}, f"{config.kind} caBundle is not the Secret's CA"
        assert _served_cert_verifies(port, ca_pem, f"{SERVICE}.{namespace}.svc")
    finally:
        _stop(process)

    # A restart reuses the Secret as it is.
    version = secret.metadata.resource_version
    process, port = _run_controller(cluster, namespace, configs, log)
    try:
        assert kube.core.read_namespaced_secret(SECRET, namespace).metadata.resource_version \
            == version  # fmt: skip
        assert _served_cert_verifies(port, ca_pem, f"{SERVICE}.{namespace}.svc")
    finally:
        _stop(process)

    # A Secret for other names (a renamed Service) is renewed, and the caBundle follows.
    stale = make_material(dns_names("old-name", namespace))
    kube.core.patch_namespaced_secret(SECRET, namespace, {"data": {
        "ca.crt": base64.b64encode(stale.ca_pem).decode(),
        "tls.crt": base64.b64encode(stale.cert_pem).decode(),
        "tls.key": base64.b64encode(stale.key_pem).decode()}})  # fmt: skip
    process, port = _run_controller(cluster, namespace, configs, log)
    try:
        renewed = kube.core.read_namespaced_secret(SECRET, namespace)
        new_ca = base64.b64decode(renewed.data["ca.crt"])
        assert new_ca not in (ca_pem, stale.ca_pem)
        config = kube.admission.read_validating_webhook_configuration(configs)
        assert base64.b64decode(config.webhooks[0].client_config.ca_bundle) == new_ca
        assert _served_cert_verifies(port, new_ca, f"{SERVICE}.{namespace}.svc")
        with pytest.raises(ssl.SSLCertVerificationError):
            _served_cert_verifies(port, ca_pem, f"{SERVICE}.{namespace}.svc")
    finally:
        _stop(process)
    text = log.read_text()
    assert "Traceback" not in text, text[-4000:]
    assert text.count("written to Secret") == 2, text[-4000:]
