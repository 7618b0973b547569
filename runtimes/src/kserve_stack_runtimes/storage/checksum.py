"""Checksums announced by servers, and verification of the bytes actually received.

Supported: MD5 (S3 ETags of non-multipart objects, GCS ``md5Hash``, ``Content-MD5``,
``x-goog-hash: md5=``, ``Digest: md5=``), SHA-256 (``Digest``/``Repr-Digest: sha-256=``) and
CRC32C (GCS ``crc32c``, ``x-goog-hash: crc32c=``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol

import google_crc32c

from .errors import ChecksumMismatchError

Algorithm = Literal["md5", "sha256", "crc32c"]

_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class Digest:
    """An expected digest: the algorithm and the raw digest bytes."""

    algorithm: Algorithm
    value: bytes

    def __str__(self) -> str:
        return f"{self.algorithm}={self.value.hex()}"


def md5_from_etag(etag: str | None) -> Digest | None:
    """The MD5 an S3 ETag stands for, or None for multipart / encrypted objects."""
    if not etag:
        return None
    bare = etag.strip().strip('"')
    if not _HEX_MD5.match(bare):
        return None  # multipart ("<hex>-<parts>") or SSE-KMS: not an MD5 of the content
    return Digest("md5", bytes.fromhex(bare))


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip().strip(":"), validate=True)
    except (binascii.Error, ValueError):
        return None


def digest_from_b64(algorithm: Algorithm, value: str | None) -> Digest | None:
    if not value:
        return None
    raw = _b64(value)
    expected_len = {"md5": 16, "sha256": 32, "crc32c": 4}[algorithm]
    if raw is None or len(raw) != expected_len:
        return None
    return Digest(algorithm, raw)


_ALIASES: dict[str, Algorithm] = {"md5": "md5", "sha-256": "sha256", "crc32c": "crc32c"}


def _digest_list(header: str) -> Iterable[Digest]:
    # "md5=abc==, sha-256=def=" (RFC 3230) or "sha-256=:def=:" (RFC 9530)
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        algorithm = _ALIASES.get(name.strip().lower())
        if algorithm is None:
            continue
        digest = digest_from_b64(algorithm, value)
        if digest is not None:
            yield digest


def digests_from_headers(headers: Mapping[str, str]) -> list[Digest]:
    """Every checksum an HTTP response announces for its body (case-insensitive headers)."""
    lower = {k.lower(): v for k, v in headers.items()}
    found: list[Digest] = []
    md5 = digest_from_b64("md5", lower.get("content-md5"))
    if md5 is not None:
        found.append(md5)
    for name in ("x-goog-hash", "digest", "repr-digest"):
        if name in lower:
            found.extend(_digest_list(lower[name]))
    unique: dict[Algorithm, Digest] = {}
    for d in found:
        unique.setdefault(d.algorithm, d)
    return list(unique.values())


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32c:
    def __init__(self) -> None:
        crc_module: Any = google_crc32c  # untyped C extension
        self._checksum: Any = crc_module.Checksum()

    def update(self, data: bytes, /) -> None:
        self._checksum.update(data)

    def digest(self) -> bytes:
        return bytes(self._checksum.digest())


def _new_hash(algorithm: Algorithm) -> _Hash:
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "sha256":
        return hashlib.sha256()
    return _Crc32c()


class Callback(Protocol):
    def __call__(self, n: int, /) -> None: ...


class VerifyingWriter:
    """A write-only file wrapper that hashes what passes through and counts bytes.

    Call :meth:`expect` with the announced digests before the first write: only those
    algorithms are computed.
    """

    def __init__(self, sink: BinaryIO, on_bytes: Callback | None = None) -> None:
        self._sink = sink
        self._on_bytes = on_bytes
        self._expected: dict[Algorithm, Digest] = {}
        self._hashes: dict[Algorithm, _Hash] = {}
        self.written = 0

    def expect(self, digests: Iterable[Digest]) -> None:
        if self.written:
            raise RuntimeError("expect() must be called before the first write")
        for d in digests:
            self._expected.setdefault(d.algorithm, d)
            self._hashes.setdefault(d.algorithm, _new_hash(d.algorithm))

    def write(self, data: bytes) -> int:
        n = self._sink.write(data)
        for h in self._hashes.values():
            h.update(data)
        self.written += len(data)
        if self._on_bytes is not None:
            self._on_bytes(len(data))
        return n

    def flush(self) -> None:
        self._sink.flush()

    def verify(self, what: str) -> list[Algorithm]:
        """Raise :class:`ChecksumMismatchError` on any mismatch; return the algorithms checked."""
        for algorithm, d in self._expected.items():
            actual = self._hashes[algorithm].digest()
            if actual != d.value:
                raise ChecksumMismatchError(
                    f"{what}: {algorithm} mismatch (expected {d.value.hex()}, got {actual.hex()})"
                )
        return list(self._expected)
