"""The contracts every provider implements, and a base for object stores.

A :class:`Provider` handles one or more URI schemes; ``open(uri)`` parses and validates the URI
(no I/O) and returns a :class:`Source`. A source can say what it is now (``fingerprint``, used to
validate the cache) and write its files into a directory (``fetch``).

:class:`ObjectStoreSource` holds what S3, GCS and HTTP share: list the objects, download each
(in parallel, each with its own retries), verify checksums, report progress, and unpack a single
archive object.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from .archive import archive_kind, unpack
from .checksum import Digest, VerifyingWriter
from .errors import InvalidURIError, NotFoundError
from .progress import Progress
from .retry import retry_call
from .settings import StorageSettings

logger = logging.getLogger(__name__)


class Source(Protocol):
    """One URI, ready to be fetched."""

    uri: str

    @property
    def local_path(self) -> Path | None:
        """The path on this machine when the source is local (file://, plain path, pvc://)."""
        ...

    def fingerprint(self) -> str | None:
        """A string that changes when the content changes, or None when unknown (no caching)."""
        ...

    def fetch(self, into: Path, progress: Progress) -> None:
        """Write the source's files into the existing empty directory ``into``."""
        ...


class Provider(Protocol):
    """Opens sources for the URI schemes it is registered for."""

    def open(self, uri: str) -> Source: ...

    def close(self) -> None:
        """Release connections (called once, when the registry is closed)."""
        ...


ProviderFactory = Callable[[StorageSettings], Provider]


def safe_relpath(uri: str, rel: str) -> str:
    """Validate an object's path below the destination: relative, no ``..``, not empty."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or rel.startswith("/"):
        raise InvalidURIError(f"object path {rel!r} would land outside the destination")
    return str(pure)


@dataclass(frozen=True)
class RemoteObject:
    """One object to download: its key, where it goes under the destination, and its identity."""

    key: str
    relpath: str
    size: int | None
    version: str
    """ETag/generation/MD5: what the cache fingerprint is made of."""
    digests: tuple[Digest, ...] = ()
    """Checksums known from the listing; more may come with the download response."""


class ObjectStoreSource(ABC):
    """A source made of objects listed under a prefix (or one object)."""

    def __init__(self, uri: str, settings: StorageSettings) -> None:
        self.uri = uri
        self.settings = settings
        self._objects: list[RemoteObject] | None = None
        self.single_object = False
        self.verified = 0

    @property
    def local_path(self) -> Path | None:
        return None

    @abstractmethod
    def list_objects(self) -> list[RemoteObject]:
        """List what the URI names; set ``single_object`` when it names one object."""

    @abstractmethod
    def read_object(self, obj: RemoteObject, sink: VerifyingWriter) -> None:
        """Stream ``obj`` into ``sink``; call ``sink.expect`` with digests first if known."""

    def objects(self) -> list[RemoteObject]:
        if self._objects is None:
            found = retry_call(
                self.list_objects, policy=self.settings.retry, what=f"listing {self.uri}"
            )
            if not found:
                raise NotFoundError("nothing found at this URI")
            self._objects = found
        return self._objects

    def fingerprint(self) -> str | None:
        listing = sorted((o.relpath, o.version, o.size) for o in self.objects())
        return "sha256:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def fetch(self, into: Path, progress: Progress) -> None:
        objects = self.objects()
        sizes = [o.size for o in objects]
        total = sum(s for s in sizes if s is not None) if None not in sizes else None
        progress.set_totals(len(objects), total)
        workers = max(1, min(self.settings.max_workers, len(objects)))

        def one(obj: RemoteObject) -> None:
            target = into / obj.relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            retry_call(
                lambda: self._download(obj, target, progress),
                policy=self.settings.retry,
                what=f"downloading {obj.key}",
            )
            progress.file_done()

        if workers == 1:
            for obj in objects:
                one(obj)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="storage") as pool:
                for future in [pool.submit(one, o) for o in objects]:
                    future.result()

        if self.single_object and self.settings.unpack_archives:
            (obj,) = objects
            path = into / obj.relpath
            if archive_kind(path.name) is not None:
                count = unpack(path, into)
                path.unlink()
                logger.info("unpacked %s: %d files", obj.relpath, count)

    def _download(self, obj: RemoteObject, target: Path, progress: Progress) -> None:
        with target.open("wb") as f:
            writer = VerifyingWriter(f, progress.add_bytes)
            writer.expect(obj.digests)
            try:
                self.read_object(obj, writer)
            except BaseException:
                progress.add_bytes(-writer.written)
                raise
        try:
            checked = writer.verify(obj.key)
        except BaseException:
            progress.add_bytes(-writer.written)
            raise
        if checked:
            self.verified += 1
            logger.debug("verified %s (%s)", obj.key, ", ".join(checked))


def split_bucket_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``('bucket', 'a/b')``; validates the bucket name."""
    rest = uri[len(scheme) + 3 :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidURIError(f"missing bucket name (expected {scheme}://BUCKET[/PREFIX])")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-._")
    if not set(bucket) <= allowed or len(bucket) < 3 or len(bucket) > 222:
        raise InvalidURIError(f"invalid bucket name {bucket!r}")
    return bucket, prefix.strip("/")


def select_under_prefix(keys: Sequence[str], prefix: str) -> tuple[list[tuple[str, str]], bool]:
    """Pick the keys a ``bucket/prefix`` URI names, with their paths below the destination.

    The key equal to the prefix is a single object (saved under its base name); keys under
    ``prefix/`` keep their path below it. ``models/m1`` does not pick ``models/m10/x``. Directory
    markers (keys ending in ``/``) are skipped. Returns ``(pairs, single_object)``.
    """
    picked: list[tuple[str, str]] = []
    single = False
    for key in keys:
        if key.endswith("/"):
            continue
        if not prefix:
            picked.append((key, key))
        elif key == prefix:
            picked.append((key, PurePosixPath(key).name))
            single = True
        elif key.startswith(prefix + "/"):
            picked.append((key, key[len(prefix) + 1 :]))
    return picked, single and len(picked) == 1
