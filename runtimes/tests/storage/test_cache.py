"""Cache: hits only when the fingerprint matches; entries replaced atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
from kserve_stack_runtimes.storage.cache import Cache


def fill_with(text: str):  # type: ignore[no-untyped-def]
    def fill(d: Path) -> None:
        (d / "model.bin").write_text(text)

    return fill


def test_lookup_store_and_invalidation(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    assert cache.lookup("s3://b/m", "fp1") is None
    data = cache.store("s3://b/m", "fp1", fill_with("v1"))
    assert (data / "model.bin").read_text() == "v1"
    assert cache.lookup("s3://b/m", "fp1") == data
    assert cache.lookup("s3://b/m", "fp2") is None
    assert cache.lookup("s3://b/other", "fp1") is None
    cache.store("s3://b/m", "fp2", fill_with("v2"))
    hit = cache.lookup("s3://b/m", "fp2")
    assert hit is not None and (hit / "model.bin").read_text() == "v2"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cache.entry("s3://b/m").name]


def test_failed_fill_keeps_the_old_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.store("u", "fp1", fill_with("v1"))

    def broken(d: Path) -> None:
        (d / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError):
        cache.store("u", "fp2", broken)
    hit = cache.lookup("u", "fp1")
    assert hit is not None and (hit / "model.bin").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == [cache.entry("u").name]
