"""hf:// against a local HTTP server speaking the hub endpoints snapshot_download uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kserve_stack_runtimes.storage import (
    AccessDeniedError,
    DownloadError,
    InvalidURIError,
    NotFoundError,
    StorageSettings,
    download,
)
from kserve_stack_runtimes.storage.providers.hf import parse
from kserve_stack_runtimes.storage.settings import HFSettings

FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer/tokenizer.json": b"{}",
    "model.safetensors": b"\x00" * 4096,
}


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("hf://org/model", ("org/model", "main"), id="default-revision"),
        pytest.param("hf://org/model:v1.0", ("org/model", "v1.0"), id="tag"),
        pytest.param("hf://gpt2", ("gpt2", "main"), id="no-org"),
        pytest.param("hf://org/model:" + "a" * 40, ("org/model", "a" * 40), id="commit"),
    ],
)
def test_parse(uri: str, expected: tuple[str, str]) -> None:
    assert parse(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("hf://", id="empty"),
        pytest.param("hf://a/b/c", id="three-parts"),
        pytest.param("hf://org/..", id="dotdot"),
        pytest.param("hf://org/model:", id="empty-revision"),
    ],
)
def test_parse_rejects(uri: str) -> None:
    with pytest.raises(InvalidURIError):
        parse(uri)


def test_snapshot_of_main(hf_hub: Any, hf_settings: StorageSettings, tmp_path: Path) -> None:
    hf_hub.add_repo("org/tiny", FILES)
    download("hf://org/tiny", tmp_path / "m", settings=hf_settings)
    assert tree(tmp_path / "m") == FILES  # no huggingface_hub bookkeeping left behind


def test_revision_selects_the_commit(
    hf_hub: Any, hf_settings: StorageSettings, tmp_path: Path
) -> None:
    old = hf_hub.add_repo("org/tiny", {"v.txt": b"one"}, refs={"v1": ""})
    hf_hub.repos["org/tiny"].refs["v1"] = old
    hf_hub.add_repo("org/tiny", {"v.txt": b"two"})  # main moves on
    download("hf://org/tiny:v1", tmp_path / "v1", settings=hf_settings)
    download("hf://org/tiny", tmp_path / "main", settings=hf_settings)
    assert tree(tmp_path / "v1") == {"v.txt": b"one"}
    assert tree(tmp_path / "main") == {"v.txt": b"two"}


def test_token_is_sent_for_a_private_repo(
    hf_hub: Any, hf_settings: StorageSettings, tmp_path: Path
) -> None:
    hf_hub.add_repo("org/private", {"a": b"secret"}, token="hf_test_token")
    with pytest.raises(DownloadError) as info:
        download("hf://org/private", tmp_path / "no", settings=hf_settings)
    assert isinstance(info.value.cause, (NotFoundError, AccessDeniedError))
    assert "HF_TOKEN" in str(info.value)

    with_token = hf_settings.with_overrides(
        hf=HFSettings(endpoint=hf_hub.url, token="hf_test_token")
    )
    download("hf://org/private", tmp_path / "yes", settings=with_token)
    assert tree(tmp_path / "yes") == {"a": b"secret"}
    assert any(auth == "Bearer hf_test_token" for _, _, auth in hf_hub.requests)


def test_missing_revision_is_not_found(
    hf_hub: Any, hf_settings: StorageSettings, tmp_path: Path
) -> None:
    hf_hub.add_repo("org/tiny", FILES)
    with pytest.raises(DownloadError) as info:
        download("hf://org/tiny:nope", tmp_path / "m", settings=hf_settings)
    assert isinstance(info.value.cause, NotFoundError)
    assert list(tmp_path.iterdir()) == []


def test_busy_hub_is_retried(hf_hub: Any, hf_settings: StorageSettings, tmp_path: Path) -> None:
    hf_hub.add_repo("org/tiny", FILES)
    hf_hub.fail_next = 2
    download("hf://org/tiny", tmp_path / "m", settings=hf_settings)
    assert tree(tmp_path / "m") == FILES


def test_endpoint_and_token_come_from_the_environment(
    hf_hub: Any, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    hf_hub.add_repo("org/private", {"a": b"x"}, token="tok")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "HF_TOKEN").write_text("tok\n")
    clean_env.setenv("HF_ENDPOINT", hf_hub.url)
    settings = StorageSettings.from_env(credentials_dir=tmp_path / "secret")
    download("hf://org/private", tmp_path / "m", settings=settings)
    assert tree(tmp_path / "m") == {"a": b"x"}
