"""Safe unpacking: members must stay inside the target."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from kserve_stack_runtimes.storage.archive import archive_kind, unpack
from kserve_stack_runtimes.storage.errors import UnsafeArchiveError


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            data = b"x" if info.isfile() else None
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("m.zip", "zip", id="zip"),
        pytest.param("m.TAR.GZ", "tar", id="tar.gz"),
        pytest.param("m.tgz", "tar", id="tgz"),
        pytest.param("m.tar", "tar", id="tar"),
        pytest.param("m.bin", None, id="not-archive"),
        pytest.param("m.gz", None, id="bare-gzip"),
    ],
)
def test_archive_kind(name: str, kind: str | None) -> None:
    assert archive_kind(name) == kind


def test_tar_with_inner_symlink_is_fine(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "ok.tar.gz", [member("d/a.bin"), member("d/link", tarfile.SYMTYPE, "a.bin")]
    )
    assert unpack(archive, tmp_path / "out") == 1
    assert (tmp_path / "out" / "d" / "link").resolve() == (
        tmp_path / "out" / "d" / "a.bin"
    ).resolve()


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([member("../x")], id="dotdot"),
        pytest.param([member("/abs/x")], id="absolute"),
        pytest.param([member("a/../../x")], id="nested-dotdot"),
        pytest.param([member("l", tarfile.SYMTYPE, "/etc/passwd")], id="absolute-symlink"),
        pytest.param([member("l", tarfile.SYMTYPE, "../../outside")], id="symlink-outside"),
        pytest.param([member("h", tarfile.LNKTYPE, "../outside")], id="hardlink-outside"),
        pytest.param([member("dev", tarfile.CHRTYPE)], id="device"),
        pytest.param([member("fifo", tarfile.FIFOTYPE)], id="fifo"),
    ],
)
def test_unsafe_tar_members_are_refused_before_writing(
    tmp_path: Path, members: list[tarfile.TarInfo]
) -> None:
    archive = make_tar(tmp_path / "bad.tar.gz", [member("first.txt"), *members])
    with pytest.raises(UnsafeArchiveError):
        unpack(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # nothing written, not even first.txt


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        unpack(path, tmp_path / "out")


@pytest.mark.parametrize(
    "name", [pytest.param("bad.zip", id="zip"), pytest.param("bad.tar.gz", id="tar")]
)
def test_corrupt_archive_is_a_clear_error(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"definitely not an archive")
    with pytest.raises(UnsafeArchiveError, match="not a valid"):
        unpack(tmp_path / name, tmp_path / "out")
