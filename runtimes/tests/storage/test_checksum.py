"""Checksums announced by servers, and verification."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from kserve_stack_runtimes.storage.checksum import (
    Digest,
    VerifyingWriter,
    digests_from_headers,
    md5_from_etag,
)
from kserve_stack_runtimes.storage.errors import ChecksumMismatchError

MD5 = hashlib.md5(b"abc").digest()
SHA = hashlib.sha256(b"abc").digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        pytest.param(f'"{MD5.hex()}"', Digest("md5", MD5), id="quoted-md5"),
        pytest.param(MD5.hex(), Digest("md5", MD5), id="bare-md5"),
        pytest.param(f'"{MD5.hex()}-3"', None, id="multipart"),
        pytest.param("", None, id="empty"),
        pytest.param('"not-an-md5"', None, id="opaque"),
    ],
)
def test_md5_from_etag(etag: str, expected: Digest | None) -> None:
    assert md5_from_etag(etag) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Content-MD5": b64(MD5)}, [Digest("md5", MD5)], id="content-md5"),
        pytest.param(
            {"x-goog-hash": f"crc32c=AAAAAA==,md5={b64(MD5)}"},
            [Digest("crc32c", b"\0\0\0\0"), Digest("md5", MD5)],
            id="x-goog-hash",
        ),
        pytest.param(
            {"Digest": f"SHA-256={b64(SHA)}, unixsum=30"}, [Digest("sha256", SHA)], id="digest"
        ),
        pytest.param(
            {"Repr-Digest": f"sha-256=:{b64(SHA)}:"}, [Digest("sha256", SHA)], id="repr-digest"
        ),
        pytest.param({"Content-MD5": "garbage!"}, [], id="invalid-ignored"),
        pytest.param({"ETag": "x"}, [], id="none"),
    ],
)
def test_digests_from_headers(headers: dict[str, str], expected: list[Digest]) -> None:
    assert sorted(digests_from_headers(headers), key=str) == sorted(expected, key=str)


def test_verifying_writer() -> None:
    sink = io.BytesIO()
    seen: list[int] = []
    writer = VerifyingWriter(sink, seen.append)
    writer.expect([Digest("md5", MD5), Digest("sha256", SHA)])
    writer.write(b"ab")
    writer.write(b"c")
    assert writer.verify("k") == ["md5", "sha256"]
    assert sink.getvalue() == b"abc" and seen == [2, 1]

    bad = VerifyingWriter(io.BytesIO())
    bad.expect([Digest("md5", MD5)])
    bad.write(b"abd")
    with pytest.raises(ChecksumMismatchError, match="k: md5 mismatch"):
        bad.verify("k")
