"""s3:// against a real moto S3 server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kserve_stack_runtimes.storage import (
    ChecksumMismatchError,
    DownloadError,
    NotFoundError,
    TransientError,
    download,
)
from kserve_stack_runtimes.storage.progress import Progress
from kserve_stack_runtimes.storage.providers.s3 import S3Provider
from kserve_stack_runtimes.storage.settings import S3Settings


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


LAYOUT = {
    "models/m1/model.bin": b"weights" * 100,
    "models/m1/config.json": b'{"a": 1}',
    "models/m1/tokenizer/vocab.txt": b"a\nb\n",
    "models/m1/": b"",  # a "directory marker" some tools write
    "models/m10/other.bin": b"not mine",
    "models/m1.json": b"sibling file",
}


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        pytest.param(
            "models/m1",
            {
                "model.bin": LAYOUT["models/m1/model.bin"],
                "config.json": b'{"a": 1}',
                "tokenizer/vocab.txt": b"a\nb\n",
            },
            id="prefix-with-nested-keys",
        ),
        pytest.param(
            "models/m1/",
            {
                "model.bin": LAYOUT["models/m1/model.bin"],
                "config.json": b'{"a": 1}',
                "tokenizer/vocab.txt": b"a\nb\n",
            },
            id="prefix-with-trailing-slash",
        ),
        pytest.param("models/m1/config.json", {"config.json": b'{"a": 1}'}, id="single-object"),
        pytest.param("models/m10", {"other.bin": b"not mine"}, id="prefix-not-confused-with-m1"),
    ],
)
def test_downloads_what_the_uri_names(
    moto_s3: Any, tmp_path: Path, suffix: str, expected: dict[str, bytes]
) -> None:
    for key, body in LAYOUT.items():
        moto_s3.put(key, body)
    dest = tmp_path / "model"
    out = download(f"s3://{moto_s3.bucket}/{suffix}", dest, settings=moto_s3.settings)
    assert out == dest
    assert tree(dest) == expected


def test_bucket_root_downloads_every_key(moto_s3: Any, tmp_path: Path) -> None:
    moto_s3.put("a.txt", b"a")
    moto_s3.put("d/b.txt", b"b")
    download(f"s3://{moto_s3.bucket}", tmp_path / "m", settings=moto_s3.settings)
    assert tree(tmp_path / "m") == {"a.txt": b"a", "d/b.txt": b"b"}


def test_single_archive_object_is_unpacked(moto_s3: Any, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"inside"
        info = tarfile.TarInfo("sub/model.pt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    moto_s3.put("archives/model.tar.gz", buf.getvalue())
    download(
        f"s3://{moto_s3.bucket}/archives/model.tar.gz", tmp_path / "m", settings=moto_s3.settings
    )
    assert tree(tmp_path / "m") == {"sub/model.pt": b"inside"}


def test_non_multipart_objects_are_verified_multipart_are_not(moto_s3: Any, tmp_path: Path) -> None:
    moto_s3.put("m/small.bin", b"x" * 1000)
    part1 = b"p" * (5 * 1024 * 1024)
    part2 = b"q" * 100
    client = moto_s3.client
    upload = client.create_multipart_upload(Bucket=moto_s3.bucket, Key="m/big.bin")
    parts = []
    for number, body in ((1, part1), (2, part2)):
        r = client.upload_part(
            Bucket=moto_s3.bucket,
            Key="m/big.bin",
            PartNumber=number,
            UploadId=upload["UploadId"],
            Body=body,
        )
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    client.complete_multipart_upload(
        Bucket=moto_s3.bucket,
        Key="m/big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )

    source = S3Provider(moto_s3.settings).open(f"s3://{moto_s3.bucket}/m")
    into = tmp_path / "into"
    into.mkdir()
    source.fetch(into, Progress("t", 0.0))
    assert source.verified == 1  # small.bin by its ETag; big.bin's ETag is "<md5>-2"
    assert (
        hashlib.md5((into / "big.bin").read_bytes()).digest() == hashlib.md5(part1 + part2).digest()
    )
    assert (into / "small.bin").read_bytes() == b"x" * 1000


@pytest.mark.parametrize(
    "suffix",
    [pytest.param("no/such/prefix", id="missing-prefix"), pytest.param("", id="empty-bucket")],
)
def test_nothing_found_is_a_clear_not_found(moto_s3: Any, tmp_path: Path, suffix: str) -> None:
    uri = f"s3://{moto_s3.bucket}/{suffix}"
    with pytest.raises(DownloadError) as info:
        download(uri, tmp_path / "m", settings=moto_s3.settings)
    assert isinstance(info.value.cause, NotFoundError)
    assert str(info.value).startswith(uri)
    assert not (tmp_path / "m").exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_bucket_is_not_found(moto_s3: Any, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download("s3://no-such-bucket-here/x", tmp_path / "m", settings=moto_s3.settings)
    assert isinstance(info.value.cause, NotFoundError)
    assert "NoSuchBucket" in str(info.value)


def test_unreachable_endpoint_is_retried_then_fails(
    moto_s3: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = moto_s3.settings.with_overrides(
        s3=S3Settings(
            endpoint_url=f"http://127.0.0.1:{port}",
            region="us-east-1",
            access_key_id="a",
            secret_access_key="b",
        ),
        timeout=2.0,
    )
    with pytest.raises(DownloadError) as info:
        download("s3://bucket-x/m", tmp_path / "m", settings=settings)
    assert isinstance(info.value.cause, TransientError)
    assert "gave up after 3 attempts" in str(info.value)
    assert sum("retrying in" in r.message for r in caplog.records) == 2


class _CorruptingProxy:
    """Forwards to the moto server and flips the first byte of object bodies under ``bad/``.

    With ``strip_flexible`` it also drops the ``x-amz-checksum-*`` headers, like S3 servers
    that store no flexible checksums: then only the ETag (MD5) check can catch it.
    """

    def __init__(self, upstream: str, strip_flexible: bool) -> None:
        self.gets = 0
        self.strip_flexible = strip_flexible
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                r = httpx.request(self.command, upstream + self.path, headers=headers, content=body)
                content = r.content
                if self.command == "GET" and "/bad/" in self.path and content:
                    proxy.gets += 1
                    content = bytes([content[0] ^ 0xFF]) + content[1:]
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if strip_flexible and k.lower().startswith("x-amz-checksum"):
                        continue
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(params=[True, False], ids=["etag-md5-check", "flexible-checksum-check"])
def corrupting_proxy(
    moto_endpoint: str, request: pytest.FixtureRequest
) -> Iterator[_CorruptingProxy]:
    proxy = _CorruptingProxy(moto_endpoint, strip_flexible=request.param)
    yield proxy
    proxy.httpd.shutdown()
    proxy.httpd.server_close()


def test_corrupted_transfer_fails_the_etag_check(
    moto_s3: Any, corrupting_proxy: _CorruptingProxy, tmp_path: Path
) -> None:
    moto_s3.put("bad/model.bin", b"precious weights")
    moto_s3.put("good/model.bin", b"precious weights")
    settings = moto_s3.settings.with_overrides(
        s3=S3Settings(
            endpoint_url=corrupting_proxy.url,
            region="us-east-1",
            access_key_id="testing",
            secret_access_key="testing",
        ),
    )
    download(f"s3://{moto_s3.bucket}/good", tmp_path / "good", settings=settings)
    assert (tmp_path / "good" / "model.bin").read_bytes() == b"precious weights"

    with pytest.raises(DownloadError) as info:
        download(f"s3://{moto_s3.bucket}/bad", tmp_path / "bad", settings=settings)
    assert isinstance(info.value.cause, ChecksumMismatchError)
    if corrupting_proxy.strip_flexible:
        assert "md5 mismatch" in str(info.value)
    assert corrupting_proxy.gets == 3  # retried, then gave up
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]
