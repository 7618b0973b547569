"""A local download cache keyed by URI and validated by the source's fingerprint.

An entry is ``<cache-dir>/<sha256(uri)[:32]>/`` holding ``data/`` (the downloaded tree) and
``meta.json`` (URI, fingerprint, time). A lookup hits only when the stored fingerprint equals the
one the source reports now (ETags/MD5s of every object, a hub commit, an HTTP ETag), so a changed
model is downloaded again. Entries are replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


class Cache:
    """The cache directory given by ``--cache-dir``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, uri: str) -> Path:
        return self.root / hashlib.sha256(uri.encode()).hexdigest()[:32]

    def lookup(self, uri: str, fingerprint: str) -> Path | None:
        """The cached tree for ``uri`` when its fingerprint matches, else None."""
        entry = self.entry(uri)
        try:
            meta = json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("uri") != uri or meta.get("fingerprint") != fingerprint:
            return None
        data = entry / "data"
        return data if data.is_dir() else None

    def store(self, uri: str, fingerprint: str, fill: Callable[[Path], None]) -> Path:
        """Run ``fill(dir)`` into a fresh directory and make it the entry for ``uri``."""
        self.root.mkdir(parents=True, exist_ok=True)
        entry = self.entry(uri)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            (tmp / "data").mkdir()
            fill(tmp / "data")
            meta = {"uri": uri, "fingerprint": fingerprint, "stored_at": time.time()}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            if entry.exists():
                trash = Path(tempfile.mkdtemp(prefix=".old-", dir=self.root))
                os.replace(entry, trash / "entry")
                os.replace(tmp, entry)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, entry)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return entry / "data"
