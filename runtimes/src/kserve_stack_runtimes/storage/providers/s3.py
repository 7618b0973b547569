"""``s3://BUCKET[/PREFIX]``: S3-protocol object stores through boto3.

Endpoint, region, TLS and credentials come from :class:`S3Settings` (KServe's variables). The
ETag of a non-multipart object is its MD5, so those downloads are verified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ..checksum import VerifyingWriter, md5_from_etag
from ..errors import (
    AccessDeniedError,
    ChecksumMismatchError,
    NotFoundError,
    StorageError,
    TransientError,
)
from ..provider import (
    ObjectStoreSource,
    RemoteObject,
    safe_relpath,
    select_under_prefix,
    split_bucket_uri,
)
from ..settings import StorageSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1 << 20

_NOT_FOUND = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}
_DENIED = {
    "AccessDenied",
    "403",
    "401",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
_THROTTLED = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestLimitExceeded",
}


def translate(err: Exception) -> StorageError:
    """Map a boto3/botocore exception to the storage error hierarchy."""
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return AccessDeniedError(
            f"no usable S3 credentials ({err}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "or awsAnonymousCredential=true"
        )
    if isinstance(err, FlexibleChecksumError):
        return ChecksumMismatchError(str(err))
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = error.get("Message") or code or str(err)
        if code in _NOT_FOUND or status == 404:
            return NotFoundError(f"{code or status}: {message}")
        if code in _DENIED or status in (401, 403):
            return AccessDeniedError(f"{code or status}: {message}")
        if code in _THROTTLED or status == 429 or status >= 500:
            return TransientError(f"{code or status}: {message}")
        return StorageError(f"{code or status}: {message}")
    if isinstance(err, (BotoConnectionError, HTTPClientError)):
        return TransientError(str(err))
    if isinstance(err, BotoCoreError):
        return StorageError(str(err))
    raise err


def make_client(settings: StorageSettings) -> S3Client:
    s3 = settings.s3
    config_args: dict[str, Any] = {
        "connect_timeout": settings.timeout,
        "read_timeout": settings.timeout,
        # Retries are ours (bounded, logged); botocore tries once.
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "s3": {"addressing_style": "virtual" if s3.virtual_addressing else "path"},
    }
    if s3.anonymous:
        config_args["signature_version"] = UNSIGNED
    session = boto3.session.Session(
        aws_access_key_id=None if s3.anonymous else s3.access_key_id,
        aws_secret_access_key=None if s3.anonymous else s3.secret_access_key,
        aws_session_token=None if s3.anonymous else s3.session_token,
        region_name=s3.region,
    )
    return session.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        verify=s3.verify,
        config=Config(**config_args),
    )


class S3Source(ObjectStoreSource):
    def __init__(self, uri: str, settings: StorageSettings, client: S3Client) -> None:
        super().__init__(uri, settings)
        self.bucket, self.prefix = split_bucket_uri(uri, "s3")
        self._client = client

    def list_objects(self) -> list[RemoteObject]:
        meta: dict[str, tuple[int, str]] = {}
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    meta[item["Key"]] = (int(item.get("Size", 0)), str(item.get("ETag", "")))
        except (BotoCoreError, ClientError) as err:
            raise translate(err) from err
        pairs, self.single_object = select_under_prefix(sorted(meta), self.prefix)
        objects = []
        for key, rel in pairs:
            size, etag = meta[key]
            md5 = md5_from_etag(etag)
            objects.append(
                RemoteObject(
                    key=key,
                    relpath=safe_relpath(self.uri, rel),
                    size=size,
                    version=etag,
                    digests=(md5,) if md5 is not None else (),
                )
            )
        return objects

    def read_object(self, obj: RemoteObject, sink: VerifyingWriter) -> None:
        try:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": obj.key}
            if obj.version:
                # The listed version, or a clear "changed while downloading" failure.
                kwargs["IfMatch"] = obj.version
            response = self._client.get_object(**kwargs)
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK):
                    sink.write(chunk)
            finally:
                body.close()
        except (BotoCoreError, ClientError) as err:
            raise translate(err) from err


class S3Provider:
    """Opens ``s3://`` URIs; one boto3 client per provider (clients are thread-safe)."""

    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings
        self._client: S3Client | None = None

    def open(self, uri: str) -> S3Source:
        split_bucket_uri(uri, "s3")  # validate before building a client
        if self._client is None:
            self._client = make_client(self.settings)
        return S3Source(uri, self.settings, self._client)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
