"""Throw-away TLS material (a CA and a server certificate) made with openssl."""

from __future__ import annotations

import base64
import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: Path
    cert: Path
    key: Path

    def ca_bundle_b64(self) -> str:
        """The CA in the form of a webhook's or an APIService's ``caBundle``."""
        return base64.b64encode(self.ca_cert.read_bytes()).decode()


def _openssl(cwd: Path, *args: str) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_tls(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TLSFiles:
    """A new CA in ``directory`` and a server certificate for ``hosts`` signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    sans = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
    _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=kss-e2e-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,digitalSignature")  # fmt: skip
    (directory / "server.ext").write_text(
        f"basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"
    )
    _openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", f"/CN={hosts[0]}")  # fmt: skip
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", "server.ext",
             "-out", "server.crt")  # fmt: skip
    return TLSFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
