"""``gs://BUCKET[/PREFIX]``: Google Cloud Storage through google-cloud-storage.

Credentials: a service-account file (GOOGLE_APPLICATION_CREDENTIALS or the mounted secret),
else Application Default Credentials, else anonymous access (public buckets). With
STORAGE_EMULATOR_HOST set, the client talks to that emulator anonymously. Objects are verified
against their MD5 (or CRC32C for composite objects).
"""

from __future__ import annotations

from typing import Any

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, TransportError
from google.cloud import storage  # type: ignore[import-untyped]

from ..checksum import Digest, VerifyingWriter, digest_from_b64
from ..errors import AccessDeniedError, NotFoundError, StorageError, TransientError
from ..provider import (
    ObjectStoreSource,
    RemoteObject,
    safe_relpath,
    select_under_prefix,
    split_bucket_uri,
)
from ..settings import StorageSettings


def translate(err: Exception) -> StorageError:
    """Map a google-cloud / requests exception to the storage error hierarchy."""
    if isinstance(err, gexc.NotFound):
        return NotFoundError(err.message or str(err))
    if isinstance(err, (gexc.Forbidden, gexc.Unauthorized)):
        return AccessDeniedError(err.message or str(err))
    if isinstance(err, (gexc.TooManyRequests, gexc.ServerError)):
        return TransientError(err.message or str(err))
    if isinstance(err, gexc.GoogleAPICallError):
        return StorageError(err.message or str(err))
    if isinstance(err, (requests.ConnectionError, requests.Timeout, TransportError)):
        return TransientError(str(err))
    if isinstance(err, GoogleAuthError):
        return AccessDeniedError(str(err))
    raise err


_ERRORS = (gexc.GoogleAPICallError, requests.RequestException, GoogleAuthError)


def _anonymous() -> Any:
    factory: Any = AnonymousCredentials  # untyped constructor
    return factory()


def make_client(settings: StorageSettings) -> Any:
    gcs = settings.gcs
    project = gcs.project or "kserve-stack"
    try:
        if gcs.emulator_host:
            return storage.Client(
                project=project,
                credentials=_anonymous(),
                client_options={"api_endpoint": gcs.emulator_host},
            )
        if gcs.credentials_file:
            return storage.Client.from_service_account_json(
                gcs.credentials_file, project=gcs.project
            )
        if not gcs.anonymous:
            try:
                credentials, default_project = google.auth.default()
            except DefaultCredentialsError:
                pass
            else:
                return storage.Client(
                    project=gcs.project or default_project, credentials=credentials
                )
        return storage.Client.create_anonymous_client()
    except (OSError, ValueError, GoogleAuthError) as err:
        raise AccessDeniedError(f"cannot load GCS credentials: {err}") from err


def _digests(md5_b64: str | None, crc32c_b64: str | None) -> tuple[Digest, ...]:
    md5 = digest_from_b64("md5", md5_b64)
    if md5 is not None:
        return (md5,)
    crc = digest_from_b64("crc32c", crc32c_b64)
    return (crc,) if crc is not None else ()


class GCSSource(ObjectStoreSource):
    def __init__(self, uri: str, settings: StorageSettings, client: Any) -> None:
        super().__init__(uri, settings)
        self.bucket, self.prefix = split_bucket_uri(uri, "gs")
        self._client = client
        self._blobs: dict[str, Any] = {}

    def list_objects(self) -> list[RemoteObject]:
        try:
            blobs = {
                b.name: b
                for b in self._client.list_blobs(
                    self.bucket, prefix=self.prefix or None, timeout=self.settings.timeout
                )
            }
        except _ERRORS as err:
            raise translate(err) from err
        pairs, self.single_object = select_under_prefix(sorted(blobs), self.prefix)
        objects = []
        for key, rel in pairs:
            blob = blobs[key]
            self._blobs[key] = blob
            objects.append(
                RemoteObject(
                    key=key,
                    relpath=safe_relpath(self.uri, rel),
                    size=int(blob.size) if blob.size is not None else None,
                    version=f"{blob.generation}:{blob.md5_hash or blob.crc32c or blob.etag}",
                    digests=_digests(blob.md5_hash, blob.crc32c),
                )
            )
        return objects

    def read_object(self, obj: RemoteObject, sink: VerifyingWriter) -> None:
        blob = self._blobs[obj.key]
        try:
            # raw_download: the stored bytes (no decompressive transcoding), so checksums hold;
            # checksum=None and retry=None: verification and retries are ours.
            blob.download_to_file(
                sink,
                raw_download=True,
                checksum=None,
                retry=None,
                timeout=self.settings.timeout,
                if_generation_match=blob.generation,
            )
        except _ERRORS as err:
            raise translate(err) from err


class GCSProvider:
    """Opens ``gs://`` URIs; the client is built on first use."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self._client: Any = None

    def open(self, uri: str) -> GCSSource:
        split_bucket_uri(uri, "gs")
        if self._client is None:
            self._client = make_client(self.settings)
        return GCSSource(uri, self.settings, self._client)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
