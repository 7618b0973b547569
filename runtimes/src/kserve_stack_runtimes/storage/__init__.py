"""The storage initializer: fetch a model from a URI into a local directory.

Used as an init container (``kserve-stack-storage-initializer SRC DEST [SRC DEST ...]``) and as
a library (``download(uri, dest)``). One provider per URI scheme, registered in
:mod:`.registry`: ``s3://``, ``gs://``, ``http(s)://``, ``hf://``, ``pvc://``, ``file://`` and
plain paths.
"""

from .api import download
from .errors import (
    AccessDeniedError,
    ChecksumMismatchError,
    DownloadError,
    InvalidURIError,
    NotFoundError,
    StorageError,
    TransientError,
    UnsafeArchiveError,
    UnsupportedSchemeError,
)
from .registry import PROVIDERS, Registry
from .settings import RetryPolicy, StorageSettings

__all__ = [
    "PROVIDERS",
    "AccessDeniedError",
    "ChecksumMismatchError",
    "DownloadError",
    "InvalidURIError",
    "NotFoundError",
    "Registry",
    "RetryPolicy",
    "StorageError",
    "StorageSettings",
    "TransientError",
    "UnsafeArchiveError",
    "UnsupportedSchemeError",
    "download",
]
