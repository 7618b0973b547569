"""The webhook certificate the controller makes for itself: names, validity, renewal, and a
real TLS handshake verified the way the API server does it (CA bundle + Service name)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from kserve_stack_controller.webhook_tls import (
    RENEW_BEFORE,
    VALIDITY,
    TLSMaterial,
    dns_names,
    make_material,
    still_good,
)

NAMES = dns_names("kserve-stack-webhook", "kserve")


def test_names_of_a_service() -> None:
    assert NAMES == [
        "kserve-stack-webhook",
        "kserve-stack-webhook.kserve",
        "kserve-stack-webhook.kserve.svc",
        "kserve-stack-webhook.kserve.svc.cluster.local",
    ]


def test_fresh_material_is_good_until_renewal_is_due() -> None:
    material = make_material(NAMES)
    assert still_good(material, NAMES)
    assert not still_good(material, dns_names("other", "kserve")), "other names: renew"
    due = dt.datetime.now(dt.UTC) + VALIDITY - RENEW_BEFORE + dt.timedelta(hours=1)
    assert not still_good(material, NAMES, now=due)


def test_mismatched_or_broken_material_is_not_good() -> None:
    one, two = make_material(NAMES), make_material(NAMES)
    assert not still_good(TLSMaterial(two.ca_pem, one.cert_pem, one.key_pem), NAMES)
    assert not still_good(TLSMaterial(b"junk", one.cert_pem, one.key_pem), NAMES)
    assert not still_good(TLSMaterial(one.ca_pem, one.cert_pem, two.key_pem), NAMES)


@pytest.mark.parametrize("name", NAMES[2:])
def test_handshake_verifies_with_the_ca_bundle(tmp_path: Path, name: str) -> None:
    material = make_material(NAMES)
    certs = material.write(tmp_path / "certs")
    assert (certs / "tls.key").stat().st_mode & 0o077 == 0, "the key is private"
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certs / "tls.crt", certs / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    raw = socket.create_connection(("127.0.0.1", port))
    with client_ctx.wrap_socket(raw, server_hostname=name) as tls:
        assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()
    # A client that trusts another CA refuses it.
    stranger = make_material(NAMES).write(tmp_path / "stranger")
    other_ctx = ssl.create_default_context(cafile=str(stranger / "ca.crt"))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=lambda: _accept_quietly(listener, server_ctx), daemon=True)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        other_ctx.wrap_socket(raw, server_hostname=name)
    thread.join(5)
    listener.close()


def _accept_quietly(listener: socket.socket, ctx: ssl.SSLContext) -> None:
    conn, _ = listener.accept()
    try:
        ctx.wrap_socket(conn, server_side=True).close()
    except (ssl.SSLError, OSError):
        conn.close()  # the client refused our certificate: expected
