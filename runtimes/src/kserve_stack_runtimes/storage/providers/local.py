"""``file://PATH``, plain paths, and ``pvc://NAME/PATH``: sources already on this machine.

They are copied into the destination, or linked when ``symlink`` is asked. A PVC is mounted by
the controller at ``<pvc_root>/NAME``; the initializer only resolves and validates the path
(it must stay inside the claim's mount and exist).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidURIError, NotFoundError
from ..progress import Progress
from ..settings import StorageSettings

_CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class LocalSource:
    """A file or directory on this machine."""

    def __init__(self, uri: str, path: Path) -> None:
        self.uri = uri
        self.path = path

    @property
    def local_path(self) -> Path | None:
        return self.path

    def fingerprint(self) -> str | None:
        return None  # copying a local tree is as cheap as validating a cached one

    def fetch(self, into: Path, progress: Progress) -> None:
        src = self.path
        if not src.exists():
            raise NotFoundError(f"{src} does not exist")
        if src.is_file():
            files = [(src, into / src.name)]
        else:
            files = [(p, into / p.relative_to(src)) for p in sorted(src.rglob("*")) if p.is_file()]
        progress.set_totals(len(files), sum(p.stat().st_size for p, _ in files))
        for source, target in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            progress.add_bytes(target.stat().st_size)
            progress.file_done()
        if src.is_dir():  # keep empty directories too
            for d in src.rglob("*"):
                if d.is_dir():
                    (into / d.relative_to(src)).mkdir(parents=True, exist_ok=True)


class LocalProvider:
    """``file:///abs/path`` and plain (absolute or relative) paths."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings

    def open(self, uri: str) -> LocalSource:
        if uri.startswith("file://"):
            parts = urlsplit(uri)
            if parts.netloc not in ("", "localhost"):
                raise InvalidURIError("file:// URIs name a local path (file:///PATH)")
            raw = unquote(parts.path)
        else:
            raw = uri
        if not raw:
            raise InvalidURIError("empty path")
        return LocalSource(uri, Path(raw).absolute())

    def close(self) -> None:
        pass


class PVCProvider:
    """``pvc://NAME/PATH`` resolved to ``<pvc_root>/NAME/PATH``."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings

    def open(self, uri: str) -> LocalSource:
        rest = uri[len("pvc://") :]
        claim, _, sub = rest.partition("/")
        if not _CLAIM_NAME.match(claim):
            raise InvalidURIError(
                f"invalid claim name {claim!r} (expected pvc://NAME[/PATH], NAME a DNS-1123 name)"
            )
        mount = (self.settings.pvc_root / claim).absolute()
        path = (mount / sub.strip("/")).resolve() if sub.strip("/") else mount.resolve()
        root = mount.resolve()
        if path != root and root not in path.parents:
            raise InvalidURIError(f"path {sub!r} leaves the claim's mount {mount}")
        if not root.is_dir():
            raise NotFoundError(f"claim {claim!r} is not mounted at {mount}")
        return LocalSource(uri, path)

    def close(self) -> None:
        pass
