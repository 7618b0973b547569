"""One settings object for the storage initializer, built once from the environment.

The variable names are KServe's, so an InferenceService's storage secrets work unchanged.
A credential may come from the variable itself, from a file named by ``<NAME>_FILE``, or from a
file called ``<NAME>`` in a mounted secret directory (``--credentials-dir``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# The file name KServe's GCS secret uses for a service-account key.
GCS_SECRET_FILE_NAME = "gcloud-application-credentials.json"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return default


def lookup_secret(
    environ: Mapping[str, str], name: str, credentials_dir: Path | None
) -> str | None:
    """Return the value of ``name`` from the environment, ``<name>_FILE``, or the secret dir."""
    value = environ.get(name)
    if value:
        return value
    file_ref = environ.get(f"{name}_FILE")
    if file_ref and Path(file_ref).is_file():
        return Path(file_ref).read_text().strip() or None
    if credentials_dir is not None:
        candidate = credentials_dir / name
        if candidate.is_file():
            return candidate.read_text().strip() or None
    return None


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-protocol store (AWS, MinIO, Ceph, ...)."""

    endpoint_url: str | None = None
    """Full endpoint URL; from AWS_ENDPOINT_URL, or S3_ENDPOINT (host[:port]) + S3_USE_HTTPS."""
    region: str | None = None
    """From AWS_REGION or AWS_DEFAULT_REGION."""
    verify: bool | str = True
    """TLS verification: False when S3_VERIFY_SSL=0, a CA bundle path from AWS_CA_BUNDLE."""
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    anonymous: bool = False
    """Unsigned requests (public buckets): awsAnonymousCredential / AWS_ANONYMOUS_CREDENTIAL."""
    virtual_addressing: bool = False
    """Virtual-hosted bucket addressing; from S3_USER_VIRTUAL_BUCKET (path style otherwise)."""


@dataclass(frozen=True)
class GCSSettings:
    """How to reach Google Cloud Storage."""

    credentials_file: str | None = None
    """Service-account JSON: GOOGLE_APPLICATION_CREDENTIALS or the secret dir's key file."""
    project: str | None = None
    """From GOOGLE_CLOUD_PROJECT."""
    emulator_host: str | None = None
    """From STORAGE_EMULATOR_HOST: talk to an emulator, anonymously."""
    anonymous: bool = False
    """From GCS_ANONYMOUS: never look for credentials (public buckets)."""


@dataclass(frozen=True)
class HFSettings:
    """How to reach a Hugging Face hub."""

    endpoint: str | None = None
    """From HF_ENDPOINT (huggingface_hub's default hub otherwise)."""
    token: str | None = field(default=None, repr=False)
    """From HF_TOKEN (or HF_TOKEN_FILE / the secret dir)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient failures."""

    attempts: int = 5
    """Total attempts per operation (1 disables retries)."""
    base_delay: float = 1.0
    """Delay before the second attempt, in seconds; doubled for each later one."""
    max_delay: float = 30.0
    """Upper bound of one delay, in seconds."""

    def delay(self, attempt: int, jitter: float) -> float:
        """Delay after failed ``attempt`` (1-based); ``jitter`` in [0, 1) spreads it."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return raw * (0.5 + jitter / 2)


@dataclass(frozen=True)
class StorageSettings:
    """Everything a download needs besides the URI and the destination."""

    s3: S3Settings = field(default_factory=S3Settings)
    gcs: GCSSettings = field(default_factory=GCSSettings)
    hf: HFSettings = field(default_factory=HFSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pvc_root: Path = Path("/mnt/pvc")
    """Where the controller mounts claims: ``pvc://NAME/PATH`` is ``<pvc_root>/NAME/PATH``."""
    timeout: float = 60.0
    """Connect/read timeout of one network request, in seconds."""
    progress_interval: float = 5.0
    """Least number of seconds between two progress lines."""
    max_workers: int = 4
    """Objects downloaded in parallel."""
    unpack_archives: bool = True
    """Unpack a single downloaded .zip/.tar/.tar.gz/.tgz object into the destination."""

    def with_overrides(self, **changes: Any) -> StorageSettings:
        """A copy with some top-level fields replaced."""
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        credentials_dir: Path | None = None,
        **overrides: Any,
    ) -> StorageSettings:
        """Read KServe's storage variables (and secret files) into a settings object."""
        env = os.environ if environ is None else environ
        if credentials_dir is None and env.get("STORAGE_CREDENTIALS_DIR"):
            credentials_dir = Path(env["STORAGE_CREDENTIALS_DIR"])

        def secret(name: str) -> str | None:
            return lookup_secret(env, name, credentials_dir)

        use_https = _flag(env.get("S3_USE_HTTPS"), True)
        endpoint = secret("AWS_ENDPOINT_URL")
        if not endpoint and env.get("S3_ENDPOINT"):
            raw = env["S3_ENDPOINT"].strip()
            endpoint = raw if "://" in raw else f"{'https' if use_https else 'http'}://{raw}"
        verify: bool | str = _flag(env.get("S3_VERIFY_SSL"), True)
        if verify and env.get("AWS_CA_BUNDLE"):
            verify = env["AWS_CA_BUNDLE"]
        s3 = S3Settings(
            endpoint_url=endpoint or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            verify=verify,
            access_key_id=secret("AWS_ACCESS_KEY_ID"),
            secret_access_key=secret("AWS_SECRET_ACCESS_KEY"),
            session_token=secret("AWS_SESSION_TOKEN"),
            anonymous=_flag(
                env.get("awsAnonymousCredential") or env.get("AWS_ANONYMOUS_CREDENTIAL"), False
            ),
            virtual_addressing=_flag(env.get("S3_USER_VIRTUAL_BUCKET"), False),
        )

        gcs_file = env.get("GOOGLE_APPLICATION_CREDENTIALS") or None
        if gcs_file is None and credentials_dir is not None:
            candidate = credentials_dir / GCS_SECRET_FILE_NAME
            if candidate.is_file():
                gcs_file = str(candidate)
        emulator = env.get("STORAGE_EMULATOR_HOST") or None
        if emulator and "://" not in emulator:
            emulator = f"http://{emulator}"
        gcs = GCSSettings(
            credentials_file=gcs_file,
            project=env.get("GOOGLE_CLOUD_PROJECT") or None,
            emulator_host=emulator,
            anonymous=_flag(env.get("GCS_ANONYMOUS"), False),
        )

        hf = HFSettings(endpoint=env.get("HF_ENDPOINT") or None, token=secret("HF_TOKEN"))
        base = cls(s3=s3, gcs=gcs, hf=hf)
        if env.get("PVC_MOUNT_ROOT"):
            base = replace(base, pvc_root=Path(env["PVC_MOUNT_ROOT"]))
        return replace(base, **overrides) if overrides else base
