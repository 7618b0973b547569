"""Safe unpacking of .zip, .tar, .tar.gz and .tgz archives.

Every member must land inside the target directory: absolute names, ``..`` components, links
pointing outside, and device or FIFO members are refused with :class:`UnsafeArchiveError`
before anything of the archive is written.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import UnsafeArchiveError

SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def archive_kind(name: str) -> str | None:
    """``'zip'`` / ``'tar'`` for names this module unpacks, else None."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    return None


def _check_name(archive: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path")
    if ".." in pure.parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} escapes the destination")


def _check_tar(archive: Path, tar: tarfile.TarFile, target: Path) -> None:
    root = target.resolve()
    for member in tar.getmembers():
        _check_name(archive, member.name)
        if member.isdev() or member.isfifo():
            raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is a special file")
        if member.issym() or member.islnk():
            link = PurePosixPath(member.linkname)
            if link.is_absolute():
                raise UnsafeArchiveError(
                    f"{archive.name}: link {member.name!r} points to an absolute path"
                )
            base = root / PurePosixPath(member.name).parent if member.issym() else root
            resolved = (base / link).resolve()
            if resolved != root and root not in resolved.parents:
                raise UnsafeArchiveError(
                    f"{archive.name}: link {member.name!r} points outside the destination"
                )


def unpack(archive: Path, target: Path) -> int:
    """Unpack ``archive`` into ``target``; return the number of regular files written."""
    kind = archive_kind(archive.name)
    target.mkdir(parents=True, exist_ok=True)
    if kind == "zip":
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    _check_name(archive, info.filename)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise UnsafeArchiveError(
                            f"{archive.name}: member {info.filename!r} is a symbolic link"
                        )
                zf.extractall(target)
                return sum(1 for i in infos if not i.is_dir())
        except zipfile.BadZipFile as err:
            raise UnsafeArchiveError(f"{archive.name}: not a valid zip archive ({err})") from err
    if kind == "tar":
        try:
            with tarfile.open(archive, mode="r:*") as tar:
                _check_tar(archive, tar, target)
                tar.extractall(target, filter="data")
                return sum(1 for m in tar.getmembers() if m.isfile())
        except tarfile.FilterError as err:
            raise UnsafeArchiveError(f"{archive.name}: {err}") from err
        except tarfile.TarError as err:
            raise UnsafeArchiveError(f"{archive.name}: not a valid tar archive ({err})") from err
    raise UnsafeArchiveError(f"{archive.name}: not a known archive type ({', '.join(SUFFIXES)})")
