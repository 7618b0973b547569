"""Staging: all or nothing at the destination."""

from __future__ import annotations

from pathlib import Path

import pytest
from kserve_stack_runtimes.storage.errors import InvalidDestinationError
from kserve_stack_runtimes.storage.staging import Staging


def test_new_destination_appears_only_on_commit(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "model"
    staging = Staging(dest)
    with staging as tmp:
        (tmp / "f").write_text("x")
        assert not dest.exists()
        staging.commit()
    assert (dest / "f").read_text() == "x"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model"]


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    with pytest.raises(RuntimeError), Staging(dest) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("network died")
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_is_filled_in_place_and_cleaned_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "mnt"
    dest.mkdir()
    (dest / "old").mkdir()
    (dest / "old" / "x").write_text("old")
    with pytest.raises(RuntimeError), Staging(dest) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    assert sorted(p.name for p in dest.iterdir()) == ["old"]

    staging = Staging(dest)
    with staging as tmp:
        (tmp / "old").mkdir()
        (tmp / "old" / "y").write_text("new")
        staging.commit()
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["old", "old/y"]


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidDestinationError), Staging(tmp_path / "f"):
        pass
