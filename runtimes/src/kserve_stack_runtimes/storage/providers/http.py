"""``http://`` and ``https://``: one file streamed with httpx, unpacked when it is an archive.

The body is checked against ``Content-MD5``, ``x-goog-hash`` or ``Digest``/``Repr-Digest`` when
the server sends them. A HEAD request (ETag, Last-Modified, length, digests) fingerprints the
file for the cache.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

from ..checksum import VerifyingWriter, digests_from_headers
from ..errors import (
    AccessDeniedError,
    InvalidURIError,
    NotFoundError,
    StorageError,
    TransientError,
)
from ..provider import ObjectStoreSource, RemoteObject, safe_relpath
from ..settings import StorageSettings

CHUNK = 1 << 20


def check_status(response: httpx.Response) -> None:
    """Raise the storage error for a non-2xx status."""
    status = response.status_code
    if status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip()
    if status in (404, 410):
        raise NotFoundError(reason)
    if status in (401, 403):
        raise AccessDeniedError(reason)
    if status in (408, 425, 429) or status >= 500:
        raise TransientError(reason)
    raise StorageError(reason)


def file_name(url: str) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return name or "download"


class HTTPSource(ObjectStoreSource):
    def __init__(self, uri: str, settings: StorageSettings, client: httpx.Client) -> None:
        super().__init__(uri, settings)
        self._client = client
        self.single_object = True

    def list_objects(self) -> list[RemoteObject]:
        name = safe_relpath(self.uri, file_name(self.uri))
        return [RemoteObject(key=self.uri, relpath=name, size=None, version="")]

    def fingerprint(self) -> str | None:
        try:
            response = self._client.head(self.uri)
        except httpx.TransportError as err:
            raise TransientError(f"{type(err).__name__}: {err}") from err
        if response.status_code in (405, 501):
            return None  # no HEAD: we cannot tell whether a cached copy is current
        check_status(response)
        h = response.headers
        parts = [h.get("etag"), h.get("last-modified")] + [str(d) for d in digests_from_headers(h)]
        if not any(parts):
            return None
        parts.append(h.get("content-length"))
        return "sha256:" + hashlib.sha256(repr(parts).encode()).hexdigest()

    def read_object(self, obj: RemoteObject, sink: VerifyingWriter) -> None:
        try:
            with self._client.stream("GET", self.uri) as response:
                check_status(response)
                sink.expect(digests_from_headers(response.headers))
                for chunk in response.iter_raw(CHUNK):
                    sink.write(chunk)
        except httpx.TransportError as err:
            raise TransientError(f"{type(err).__name__}: {err}") from err


class HTTPProvider:
    """Opens ``http://`` and ``https://`` URIs with one pooled client."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self._client: httpx.Client | None = None

    def open(self, uri: str) -> HTTPSource:
        parts = urlsplit(uri)
        if not parts.hostname:
            raise InvalidURIError("missing host (expected http(s)://HOST/PATH)")
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.settings.timeout,
                follow_redirects=True,
                # identity: the saved bytes are the bytes the digests describe
                headers={"Accept-Encoding": "identity", "User-Agent": "kserve-stack-storage"},
            )
        return HTTPSource(uri, self.settings, self._client)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
