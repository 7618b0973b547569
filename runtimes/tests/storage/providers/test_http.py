"""http(s):// against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from kserve_stack_runtimes.storage import (
    AccessDeniedError,
    ChecksumMismatchError,
    DownloadError,
    NotFoundError,
    StorageSettings,
    TransientError,
    UnsafeArchiveError,
    download,
)

BODY = b"model bytes " * 500


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_plain_file(http_files: Any, http_settings: StorageSettings, tmp_path: Path) -> None:
    url = http_files.add("/models/model.joblib", BODY)
    download(url, tmp_path / "m", settings=http_settings)
    assert tree(tmp_path / "m") == {"model.joblib": BODY}


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        pytest.param("m.tar.gz", tar_bytes({"a/b.txt": b"b", "c.txt": b"c"}), id="tar.gz"),
        pytest.param("m.tgz", tar_bytes({"a/b.txt": b"b", "c.txt": b"c"}), id="tgz"),
        pytest.param("m.tar", tar_bytes({"a/b.txt": b"b", "c.txt": b"c"}, "w"), id="tar"),
        pytest.param("m.zip", zip_bytes({"a/b.txt": b"b", "c.txt": b"c"}), id="zip"),
    ],
)
def test_archives_are_unpacked(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path, name: str, payload: bytes
) -> None:
    url = http_files.add(f"/{name}", payload)
    download(url, tmp_path / "m", settings=http_settings)
    assert tree(tmp_path / "m") == {"a/b.txt": b"b", "c.txt": b"c"}


def test_no_unpack_keeps_the_archive(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path
) -> None:
    payload = zip_bytes({"x": b"x"})
    url = http_files.add("/m.zip", payload)
    download(url, tmp_path / "m", settings=http_settings.with_overrides(unpack_archives=False))
    assert tree(tmp_path / "m") == {"m.zip": payload}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(tar_bytes({"../evil.txt": b"x"}), id="tar-dotdot"),
        pytest.param(tar_bytes({"/etc/evil.txt": b"x"}), id="tar-absolute"),
        pytest.param(zip_bytes({"../../evil.txt": b"x"}), id="zip-dotdot"),
        pytest.param(zip_bytes({"/abs/evil.txt": b"x"}), id="zip-absolute"),
    ],
)
def test_path_traversal_is_rejected(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path, payload: bytes
) -> None:
    name = "/evil.zip" if payload.startswith(b"PK") else "/evil.tar.gz"
    url = http_files.add(name, payload)
    dest = tmp_path / "sandbox" / "m"
    with pytest.raises(DownloadError) as info:
        download(url, dest, settings=http_settings)
    assert isinstance(info.value.cause, UnsafeArchiveError)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "sandbox" / "evil.txt").exists()
    assert list((tmp_path / "sandbox").iterdir()) == []


def _checksum_headers() -> list[Any]:
    md5 = hashlib.md5(BODY).digest()
    sha = hashlib.sha256(BODY).digest()
    crc = google_crc32c.Checksum(BODY).digest()
    return [
        pytest.param({"Content-MD5": b64(md5)}, id="content-md5"),
        pytest.param({"x-goog-hash": f"crc32c={b64(crc)}, md5={b64(md5)}"}, id="x-goog-hash"),
        pytest.param({"x-goog-hash": f"crc32c={b64(crc)}"}, id="x-goog-hash-crc32c-only"),
        pytest.param({"Digest": f"sha-256={b64(sha)}"}, id="digest-sha256"),
        pytest.param({"Repr-Digest": f"sha-256=:{b64(sha)}:"}, id="repr-digest"),
    ]


@pytest.mark.parametrize("headers", _checksum_headers())
def test_announced_checksums_are_verified(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path, headers: dict[str, str]
) -> None:
    url = http_files.add("/good.bin", BODY, headers=headers)
    download(url, tmp_path / "good", settings=http_settings)
    assert (tmp_path / "good" / "good.bin").read_bytes() == BODY

    corrupt = bytes([BODY[0] ^ 1]) + BODY[1:]
    url = http_files.add("/bad.bin", corrupt, headers=headers)
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "bad", settings=http_settings)
    assert isinstance(info.value.cause, ChecksumMismatchError)
    assert http_files.count("GET", "/bad.bin") == 3  # retried, then gave up
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("status", "error", "gets"),
    [
        pytest.param(404, NotFoundError, 1, id="404-not-found"),
        pytest.param(403, AccessDeniedError, 1, id="403-denied"),
        pytest.param(401, AccessDeniedError, 1, id="401-denied"),
        pytest.param(503, TransientError, 3, id="503-retried"),
        pytest.param(429, TransientError, 3, id="429-retried"),
    ],
)
def test_error_statuses(  # noqa: PLR0917
    http_files: Any,
    http_settings: StorageSettings,
    tmp_path: Path,
    status: int,
    error: type[Exception],
    gets: int,
) -> None:
    url = http_files.add("/m.bin", b"", status=status)
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "m", settings=http_settings)
    assert isinstance(info.value.cause, error)
    assert str(info.value).startswith(url)
    assert f"HTTP {status}" in str(info.value)
    assert http_files.count("GET", "/m.bin") == gets
    assert list(tmp_path.iterdir()) == []


def test_transient_failures_are_retried_until_success(
    http_files: Any,
    http_settings: StorageSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = http_files.add("/m.bin", BODY, fail_first=2, fail_status=502)
    download(url, tmp_path / "m", settings=http_settings)
    assert (tmp_path / "m" / "m.bin").read_bytes() == BODY
    assert http_files.count("GET", "/m.bin") == 3
    retries = [r.message for r in caplog.records if "retrying in" in r.message]
    assert len(retries) == 2
    for n, line in enumerate(retries, start=1):
        assert line.startswith(f"downloading {url} failed (attempt {n}/3): HTTP 502")


def test_progress_lines_during_a_slow_download(
    http_files: Any,
    http_settings: StorageSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    url = http_files.add("/slow.bin", b"s" * 20 * 1024, delay_per_chunk=0.05)
    download(url, tmp_path / "m", settings=http_settings.with_overrides(progress_interval=0.3))
    lines = [r.message for r in caplog.records if r.message.startswith("progress ")]
    assert 1 <= len(lines) <= 6, lines  # ~1 s of transfer, a line at most every 0.3 s
    assert all(line.startswith(f"progress {url}: ") for line in lines)


def test_existing_destination_directory_is_filled_in_place(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path, md5_b64: Callable[[bytes], str]
) -> None:
    dest = tmp_path / "mnt-models"
    dest.mkdir()
    (dest / "model.bin").write_bytes(b"stale")
    (dest / "keep.txt").write_bytes(b"keep")
    url = http_files.add("/model.bin", BODY, headers={"Content-MD5": md5_b64(BODY)})
    download(url, dest, settings=http_settings)
    assert tree(dest) == {"model.bin": BODY, "keep.txt": b"keep"}
