"""Every failure the storage initializer expects, as one small exception hierarchy.

An expected failure (bad URI, missing object, denied access, corrupt transfer) is a
:class:`StorageError`: the command line reports it as one log line and exits non-zero, without
a stack trace. ``retryable`` tells the retry loop whether trying again can help.
"""

from __future__ import annotations

from typing import ClassVar


class StorageError(Exception):
    """Base class of the expected failures."""

    retryable: ClassVar[bool] = False


class InvalidURIError(StorageError):
    """The URI is malformed or names something the provider cannot address."""


class UnsupportedSchemeError(InvalidURIError):
    """No provider is registered for the URI's scheme."""


class InvalidDestinationError(StorageError):
    """The destination cannot receive the download (e.g. it is an existing file)."""


class NotFoundError(StorageError):
    """The bucket, object, prefix, repository, revision or path does not exist."""


class AccessDeniedError(StorageError):
    """The credentials are missing, wrong, or lack permission."""


class UnsafeArchiveError(StorageError):
    """An archive member would land outside the destination, or is a device/special file."""


class TransientError(StorageError):
    """A failure worth retrying: connection errors, timeouts, 5xx answers, throttling."""

    retryable = True


class ChecksumMismatchError(StorageError):
    """The bytes received do not match the checksum the server announced."""

    retryable = True


class DownloadError(StorageError):
    """A download of one URI failed; wraps the cause and names the URI in its message."""

    def __init__(self, uri: str, cause: StorageError) -> None:
        super().__init__(f"{uri}: {cause}")
        self.uri = uri
        self.cause = cause
