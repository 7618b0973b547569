"""Write a download into a temporary directory beside its destination, then move it in place.

Nothing half-written is ever visible at the destination: on failure the temporary directory is
removed and the destination is left as it was.

* The destination does not exist: stage in ``<parent>/.<name>.tmp-XXXX`` and rename it to the
  destination in one step.
* The destination is an existing directory (e.g. an ``emptyDir`` mounted at /mnt/models, which
  cannot be renamed over): stage in ``<dest>/.tmp-XXXX`` on the same filesystem and move each
  top-level entry in, replacing same-named entries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from .errors import InvalidDestinationError

STAGING_PREFIX = ".tmp-"


def remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


class Staging:
    """Context manager: ``with Staging(dest) as tmp: ...; staging.commit()``."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.path: Path | None = None
        self._into_existing = False
        self.committed = False

    def __enter__(self) -> Path:
        dest = self.dest
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            raise InvalidDestinationError(f"destination {dest} exists and is not a directory")
        if dest.is_dir():
            self._into_existing = True
            self.path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dest))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(
                tempfile.mkdtemp(prefix=f".{dest.name}{STAGING_PREFIX}", dir=dest.parent)
            )
        return self.path

    def commit(self) -> None:
        """Move the staged tree to the destination."""
        assert self.path is not None
        if self._into_existing:
            for entry in sorted(self.path.iterdir()):
                target = self.dest / entry.name
                if target.exists() or target.is_symlink():
                    remove_path(target)
                os.replace(entry, target)
            self.path.rmdir()
        else:
            os.replace(self.path, self.dest)
        self.committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.path is not None and self.path.exists() and not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
