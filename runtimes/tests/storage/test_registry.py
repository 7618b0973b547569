"""Registry: one provider per scheme, registered in one table."""

from __future__ import annotations

import pytest
from kserve_stack_runtimes.storage import PROVIDERS, Registry, StorageSettings
from kserve_stack_runtimes.storage.errors import InvalidURIError, UnsupportedSchemeError
from kserve_stack_runtimes.storage.providers.gcs import GCSSource
from kserve_stack_runtimes.storage.providers.hf import HFSource
from kserve_stack_runtimes.storage.providers.http import HTTPSource
from kserve_stack_runtimes.storage.providers.local import LocalSource
from kserve_stack_runtimes.storage.providers.s3 import S3Source
from kserve_stack_runtimes.storage.registry import scheme_of


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        pytest.param("s3://bucket/m", S3Source, id="s3"),
        pytest.param("gs://bucket/m", GCSSource, id="gs"),
        pytest.param("https://host/m.bin", HTTPSource, id="https"),
        pytest.param("http://host/m.bin", HTTPSource, id="http"),
        pytest.param("hf://org/m", HFSource, id="hf"),
        pytest.param("file:///tmp/m", LocalSource, id="file"),
        pytest.param("/tmp/m", LocalSource, id="abs-path"),
        pytest.param("relative/m", LocalSource, id="rel-path"),
    ],
)
def test_each_scheme_opens_its_source(uri: str, kind: type) -> None:
    settings = StorageSettings(gcs=StorageSettings().gcs.__class__(anonymous=True))
    with Registry(settings) as registry:
        assert isinstance(registry.open(uri), kind)


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        pytest.param("ftp://host/x", UnsupportedSchemeError, id="unknown-scheme"),
        pytest.param("s3://", InvalidURIError, id="no-bucket"),
        pytest.param("s3://Bad_Bucket/x", InvalidURIError, id="bad-bucket"),
        pytest.param("gs://ab/x", InvalidURIError, id="short-bucket"),
        pytest.param("https:///path", InvalidURIError, id="no-host"),
        pytest.param("file://remote-host/x", InvalidURIError, id="file-with-host"),
        pytest.param("pvc://Bad_Claim/x", InvalidURIError, id="bad-claim"),
    ],
)
def test_bad_uris(uri: str, error: type[Exception]) -> None:
    with Registry(StorageSettings()) as registry, pytest.raises(error):
        registry.open(uri)


def test_scheme_table() -> None:
    assert scheme_of("S3://b") == "s3" and scheme_of("/x") == ""
    assert set(PROVIDERS) == {"s3", "gs", "http", "https", "hf", "pvc", "file", ""}
