"""``download(uri, dest)``: the importable entry point the model server and the CLI share."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from .cache import Cache
from .errors import DownloadError, NotFoundError, StorageError
from .progress import Progress, human_bytes
from .registry import Registry
from .retry import retry_call
from .settings import StorageSettings
from .staging import Staging, remove_path

logger = logging.getLogger("kserve_stack_runtimes.storage")


def _copy_tree(src: Path, into: Path, progress: Progress) -> None:
    files = [p for p in sorted(src.rglob("*")) if p.is_file()]
    progress.set_totals(len(files), sum(p.stat().st_size for p in files))
    shutil.copytree(src, into, dirs_exist_ok=True, symlinks=True)
    progress.set_bytes(progress.total_bytes or 0)
    progress.files_done = len(files)


def _link(target: Path, dest: Path) -> None:
    """Make ``dest`` point at ``target``: ``dest`` itself, or its entries when it is a dir."""
    target = target.absolute()
    if dest.is_dir() and not dest.is_symlink():
        entries = [target] if target.is_file() else sorted(target.iterdir())
        for entry in entries:
            link = dest / entry.name
            if link.exists() or link.is_symlink():
                remove_path(link)
            link.symlink_to(entry)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.symlink_to(target, target_is_directory=target.is_dir())
    os.replace(tmp, dest)


def download(
    uri: str,
    dest: str | Path,
    *,
    settings: StorageSettings | None = None,
    cache_dir: str | Path | None = None,
    symlink: bool = False,
    registry: Registry | None = None,
) -> Path:
    """Download ``uri`` into the directory ``dest`` and return ``dest``.

    ``cache_dir``: keep a copy there and skip the download when the copy is current.
    ``symlink``: link instead of copying for local sources (and for the cache copy).
    Raises :class:`DownloadError` (naming the URI) for every expected failure.
    """
    settings = settings or StorageSettings.from_env()
    if registry is None:
        with Registry(settings) as own:
            return download(
                uri, dest, settings=settings, cache_dir=cache_dir, symlink=symlink, registry=own
            )
    dest = Path(dest)
    progress = Progress(uri, settings.progress_interval)
    try:
        source = registry.open(uri)
        local = source.local_path
        if symlink and local is not None:
            if not local.exists():
                raise NotFoundError(f"{local} does not exist")
            _link(local, dest)
            logger.info("linked %s -> %s", dest, local)
            return dest
        fingerprint = None
        if cache_dir is not None:
            fingerprint = retry_call(
                source.fingerprint, policy=settings.retry, what=f"checking {uri}"
            )
        if cache_dir is not None and fingerprint is not None:
            cache = Cache(Path(cache_dir))
            cached = cache.lookup(uri, fingerprint)
            if cached is not None:
                logger.info("cache hit for %s (%s)", uri, cache.entry(uri))
            else:
                logger.info("downloading %s into the cache %s", uri, cache.entry(uri))
                cached = cache.store(uri, fingerprint, lambda d: source.fetch(d, progress))
            if symlink:
                _link(cached, dest)
            else:
                staging = Staging(dest)
                with staging as tmp:
                    _copy_tree(cached, tmp, progress)
                    staging.commit()
        else:
            if cache_dir is not None:
                logger.info("%s cannot be fingerprinted; not caching it", uri)
            logger.info("downloading %s to %s", uri, dest)
            staging = Staging(dest)
            with staging as tmp:
                source.fetch(tmp, progress)
                staging.commit()
    except DownloadError:
        raise
    except StorageError as err:
        raise DownloadError(uri, err) from err
    logger.info(
        "done %s -> %s: %d files, %s in %.1fs",
        uri,
        dest,
        progress.files_done,
        human_bytes(progress.bytes_done),
        progress.elapsed(),
    )
    return dest
