"""gs:// against a real gcp-storage-emulator server on 127.0.0.1 (STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from kserve_stack_runtimes.storage import DownloadError, NotFoundError, StorageSettings, download
from kserve_stack_runtimes.storage.progress import Progress
from kserve_stack_runtimes.storage.providers.gcs import GCSProvider


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


LAYOUT = {
    "models/m1/model.bin": b"w" * 3000,
    "models/m1/nested/deeper/config.json": b"{}",
    "models/m10/x": b"other",
}


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        pytest.param(
            "models/m1",
            {"model.bin": b"w" * 3000, "nested/deeper/config.json": b"{}"},
            id="prefix-with-nested-names",
        ),
        pytest.param("models/m1/model.bin", {"model.bin": b"w" * 3000}, id="single-object"),
        pytest.param(
            "",
            {
                "models/m1/model.bin": b"w" * 3000,
                "models/m1/nested/deeper/config.json": b"{}",
                "models/m10/x": b"other",
            },
            id="bucket-root",
        ),
    ],
)
def test_downloads_what_the_uri_names(
    gcs: Any, tmp_path: Path, suffix: str, expected: dict[str, bytes]
) -> None:
    for name, body in LAYOUT.items():
        gcs.put(name, body)
    download(f"gs://{gcs.bucket}/{suffix}", tmp_path / "m", settings=gcs.settings)
    assert tree(tmp_path / "m") == expected


def test_objects_are_verified_by_md5(gcs: Any, tmp_path: Path) -> None:
    gcs.put("m/a", b"a" * 10)
    gcs.put("m/b", b"b" * 20)
    source = GCSProvider(gcs.settings).open(f"gs://{gcs.bucket}/m")
    into = tmp_path / "into"
    into.mkdir()
    progress = Progress("t", 0.0)
    source.fetch(into, progress)
    assert source.verified == 2
    assert progress.bytes_done == 30 and progress.files_done == 2


def test_zip_object_is_unpacked(gcs: Any, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/weights.bin", b"zipped")
    gcs.put("m.zip", buf.getvalue())
    download(f"gs://{gcs.bucket}/m.zip", tmp_path / "m", settings=gcs.settings)
    assert tree(tmp_path / "m") == {"model/weights.bin": b"zipped"}


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("gs://{bucket}/nothing/here", id="missing-prefix"),
        pytest.param("gs://no-such-bucket-zz/x", id="missing-bucket"),
    ],
)
def test_missing_is_not_found(gcs: Any, tmp_path: Path, uri: str) -> None:
    uri = uri.format(bucket=gcs.bucket)
    with pytest.raises(DownloadError) as info:
        download(uri, tmp_path / "m", settings=gcs.settings)
    assert isinstance(info.value.cause, NotFoundError)
    assert str(info.value).startswith(uri)
    assert list(tmp_path.iterdir()) == []


def test_emulator_host_comes_from_the_environment(
    gcs: Any, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    gcs.put("m/a", b"env")
    clean_env.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint.removeprefix("http://"))
    settings = StorageSettings.from_env()
    assert settings.gcs.emulator_host == gcs.endpoint
    download(f"gs://{gcs.bucket}/m", tmp_path / "m", settings=settings)
    assert tree(tmp_path / "m") == {"a": b"env"}
