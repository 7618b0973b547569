"""The webhook server's TLS in a cluster, with no cert-manager: the controller keeps a CA and
a serving certificate for its webhook Service in a Secret of its own namespace (made on
first start, reused while valid, renewed when it expires within ``RENEW_BEFORE``), serves
with it, and writes the CA into the ``caBundle`` of the webhook configurations that the
chart or kustomize installed. Several replicas starting at once agree through the API
server: the first create wins, the others read what it wrote."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.constants import FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY
from kserve_stack_controller.kube import Kube

log = logging.getLogger(__name__)

VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
WEBHOOK_CONFIG_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


@dataclass(frozen=True)
class TLSMaterial:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path) -> Path:
        """tls.crt, tls.key and ca.crt in ``directory`` (the server's cert dir)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "ca.crt").write_bytes(self.ca_pem)
        (directory / "tls.crt").write_bytes(self.cert_pem)
        key = directory / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return directory


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a webhook Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def make_material(names: list[str], now: dt.datetime | None = None) -> TLSMaterial:
    """A new CA and a serving certificate for ``names`` signed by it (ECDSA P-256)."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{MANAGED_BY} webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[-1])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TLSMaterial(
        ca_pem=ca.public_bytes(pem),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def still_good(material: TLSMaterial, names: list[str], now: dt.datetime | None = None) -> bool:
    """The certificate covers ``names``, was issued by the CA beside it, and is valid for
    longer than ``RENEW_BEFORE``."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(material.cert_pem)
        ca = x509.load_pem_x509_certificate(material.ca_pem)
        key = serialization.load_pem_private_key(material.key_pem, password=None)
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if key.public_key() != cert.public_key():
            raise ValueError("the key is not the certificate's")
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as err:
        log.info("webhook certificate unusable (%s): making a new one", err or type(err).__name__)
        return False
    expires = min(cert.not_valid_after_utc, ca.not_valid_after_utc)
    return (
        set(names) <= set(sans.get_values_for_type(x509.DNSName)) and expires - now > RENEW_BEFORE
    )


def _from_secret(secret: dict[str, Any]) -> TLSMaterial | None:
    data = secret.get("data") or {}
    try:
        return TLSMaterial(*(base64.b64decode(data[k]) for k in ("ca.crt", "tls.crt", "tls.key")))
    except (KeyError, ValueError):
        return None


def _secret(name: str, namespace: str, material: TLSMaterial) -> dict[str, Any]:
    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "type": "kubernetes.io/tls",
        "data": {
            "ca.crt": b64(material.ca_pem),
            "tls.crt": b64(material.cert_pem),
            "tls.key": b64(material.key_pem),
        },
    }


def ensure_secret(kube: Kube, name: str, namespace: str, service: str) -> TLSMaterial:
    """The TLS material of the Secret ``namespace/name``, made (or renewed) when it is
    missing, unusable, for other names or about to expire."""
    names = dns_names(service, namespace)
    path = f"/api/v1/namespaces/{namespace}/secrets"
    for _ in range(3):
        found = kube.get("Secret", name, namespace)
        current = _from_secret(found) if found else None
        if current is not None and still_good(current, names):
            log.info("webhook certificate from Secret %s/%s", namespace, name)
            return current
        fresh = make_material(names)
        body = _secret(name, namespace, fresh)
        try:
            if found is None:
                kube.request("post", path, body=body)
            else:  # replace only the version we judged: another replica may have renewed it
                body["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
                kube.request("put", f"{path}/{name}", body=body)
        except ApiException as err:
            if err.status == 409:
                continue  # another replica wrote it first: read theirs
            raise
        log.info(
            "webhook certificate for %s written to Secret %s/%s (valid until %s)",
            names[2], namespace, name,
            x509.load_pem_x509_certificate(fresh.cert_pem).not_valid_after_utc.date(),
        )  # fmt: skip
        return fresh
    raise RuntimeError(f"Secret {namespace}/{name} kept changing while it was being written")


def inject_ca_bundle(kube: Kube, config_name: str, ca_pem: bytes) -> list[str]:
    """Write ``ca_pem`` into every webhook of the configurations named ``config_name``;
    returns the kinds patched (a configuration that is not installed is skipped)."""
    bundle = base64.b64encode(ca_pem).decode()
    patched = []
    for kind in WEBHOOK_CONFIG_KINDS:
        found = kube.get(kind, config_name)
        if found is None:
            log.warning("no %s %s: its webhooks are not registered", kind, config_name)
            continue
        hooks = found.get("webhooks") or []
        if all(h.get("clientConfig", {}).get("caBundle") == bundle for h in hooks):
            patched.append(kind)
            continue
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
            for i in range(len(hooks))
        ]
        kube.request(
            "patch",
            f"/apis/admissionregistration.k8s.io/v1/{kind.lower()}s/{config_name}",
            body=ops,
            content_type="application/json-patch+json",
            field_manager=FIELD_MANAGER,
        )
        patched.append(kind)
    return patched
