"""download(): the cache option, end to end against a local HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kserve_stack_runtimes.storage import StorageSettings, download


def test_cache_skips_download_while_etag_matches(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path
) -> None:
    url = http_files.add("/model.bin", b"v1", headers={"ETag": '"one"'})
    cache = tmp_path / "cache"
    download(url, tmp_path / "a", settings=http_settings, cache_dir=cache)
    download(url, tmp_path / "b", settings=http_settings, cache_dir=cache)
    assert http_files.count("GET", "/model.bin") == 1  # second run: HEAD only, then the cache
    assert (tmp_path / "b" / "model.bin").read_bytes() == b"v1"

    http_files.add("/model.bin", b"v2", headers={"ETag": '"two"'})
    download(url, tmp_path / "c", settings=http_settings, cache_dir=cache, symlink=True)
    assert http_files.count("GET", "/model.bin") == 2
    assert (tmp_path / "c").is_symlink() and (tmp_path / "c" / "model.bin").read_bytes() == b"v2"


def test_uncacheable_source_is_downloaded_every_time(
    http_files: Any, http_settings: StorageSettings, tmp_path: Path
) -> None:
    url = http_files.add("/model.bin", b"v1", head_allowed=False)
    for name in ("a", "b"):
        download(url, tmp_path / name, settings=http_settings, cache_dir=tmp_path / "cache")
    assert http_files.count("GET", "/model.bin") == 2
