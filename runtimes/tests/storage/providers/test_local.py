"""file://, plain paths and pvc://: copy, or link when asked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kserve_stack_runtimes.storage import (
    DownloadError,
    InvalidURIError,
    NotFoundError,
    StorageSettings,
    download,
)


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src" / "model"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(b"a")
    (src / "sub" / "b.json").write_bytes(b"{}")
    return src


@pytest.mark.parametrize(
    "form", [pytest.param("file", id="file-uri"), pytest.param("path", id="plain-path")]
)
def test_copy_directory(model_dir: Path, tmp_path: Path, form: str) -> None:
    uri = f"file://{model_dir}" if form == "file" else str(model_dir)
    download(uri, tmp_path / "dest", settings=StorageSettings())
    assert tree(tmp_path / "dest") == {"a.bin": b"a", "sub/b.json": b"{}"}
    assert not (tmp_path / "dest").is_symlink()


def test_copy_single_file(model_dir: Path, tmp_path: Path) -> None:
    download(str(model_dir / "a.bin"), tmp_path / "dest", settings=StorageSettings())
    assert tree(tmp_path / "dest") == {"a.bin": b"a"}


def test_symlink(model_dir: Path, tmp_path: Path) -> None:
    download(str(model_dir), tmp_path / "dest", settings=StorageSettings(), symlink=True)
    assert (tmp_path / "dest").is_symlink() and (tmp_path / "dest").resolve() == model_dir.resolve()
    existing = tmp_path / "mnt"
    existing.mkdir()
    download(str(model_dir), existing, settings=StorageSettings(), symlink=True)
    assert sorted(p.name for p in existing.iterdir()) == ["a.bin", "sub"]
    assert all(p.is_symlink() for p in existing.iterdir())


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        download(str(tmp_path / "nope"), tmp_path / "dest", settings=StorageSettings())
    assert isinstance(info.value.cause, NotFoundError)
    assert not (tmp_path / "dest").exists()


def test_pvc_resolves_under_the_mount_root(model_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "pvc"
    (root / "my-claim").mkdir(parents=True)
    shutil.copytree(model_dir, root / "my-claim" / "models" / "model")
    settings = StorageSettings(pvc_root=root)
    download("pvc://my-claim/models/model", tmp_path / "dest", settings=settings)
    assert tree(tmp_path / "dest") == {"a.bin": b"a", "sub/b.json": b"{}"}


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        pytest.param("pvc://my-claim/../other/x", InvalidURIError, id="escapes-claim"),
        pytest.param("pvc://not-mounted/x", NotFoundError, id="claim-not-mounted"),
        pytest.param("pvc://my-claim/missing", NotFoundError, id="missing-path"),
    ],
)
def test_pvc_errors(tmp_path: Path, uri: str, error: type[Exception]) -> None:
    root = tmp_path / "pvc"
    (root / "my-claim").mkdir(parents=True)
    (root / "other").mkdir()
    with pytest.raises(DownloadError) as info:
        download(uri, tmp_path / "dest", settings=StorageSettings(pvc_root=root))
    assert isinstance(info.value.cause, error)
    assert str(info.value).startswith(uri)
