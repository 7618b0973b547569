"""``kserve-stack-storage-initializer``: KServe's storage-initializer calling convention.

Exit status: 0 when every pair was downloaded, 1 when one failed (one log line names the URI and
the reason), 2 for bad command-line usage, 143 when terminated (staging directories removed).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .api import download
from .errors import StorageError
from .registry import Registry
from .settings import RetryPolicy, StorageSettings

logger = logging.getLogger("kserve_stack_runtimes.storage")

DESCRIPTION = """\
Download models into local directories, as a Kubernetes init container or by hand.

Arguments are pairs: SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]. Each source is downloaded into a
temporary directory beside DEST_PATH and moved into place only when complete.

Sources:
  s3://BUCKET[/PREFIX]        objects under PREFIX (or the single object PREFIX)
  gs://BUCKET[/PREFIX]        same, on Google Cloud Storage
  http(s)://HOST/PATH         one file; .zip/.tar/.tar.gz/.tgz archives are unpacked
  hf://ORG/MODEL[:REVISION]   a Hugging Face hub repository (revision defaults to main)
  pvc://NAME/PATH             a path on the claim mounted at PVC_ROOT/NAME
  file:///PATH, PATH          a local file or directory
"""

EPILOG = """\
environment (KServe's names; a credential may also come from <NAME>_FILE or the file <NAME> in
--credentials-dir):
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN   S3 credentials
  AWS_ENDPOINT_URL or S3_ENDPOINT (host[:port]) + S3_USE_HTTPS  S3 endpoint (default AWS)
  AWS_REGION / AWS_DEFAULT_REGION                               S3 region
  S3_VERIFY_SSL=0, AWS_CA_BUNDLE=PATH                           S3 TLS verification
  awsAnonymousCredential=true                                   unsigned S3 requests
  S3_USER_VIRTUAL_BUCKET=true                                   virtual-hosted bucket addressing
  GOOGLE_APPLICATION_CREDENTIALS=PATH                           GCS service-account key (or
                                         gcloud-application-credentials.json in --credentials-dir)
  GOOGLE_CLOUD_PROJECT, GCS_ANONYMOUS=true, STORAGE_EMULATOR_HOST   GCS project/anonymous/emulator
  HF_ENDPOINT, HF_TOKEN                                         Hugging Face hub and token
  STORAGE_CREDENTIALS_DIR, PVC_MOUNT_ROOT                       defaults of the flags below

exit status: 0 success, 1 a download failed, 2 usage error, 143 terminated.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kserve-stack-storage-initializer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "pairs",
        nargs="+",
        metavar="SRC_URI DEST_PATH",
        help="a source URI and the directory to download it into; repeat for more pairs",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="keep a copy of each download here and skip downloading when the copy's "
        "fingerprint (ETags/MD5s, hub commit, HTTP ETag) still matches the source",
    )
    parser.add_argument(
        "--symlink",
        action="store_true",
        help="link DEST_PATH to local sources (file://, paths, pvc://) and to cache entries "
        "instead of copying",
    )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        help="a mounted secret directory whose files are named like the variables above "
        "(default: $STORAGE_CREDENTIALS_DIR)",
    )
    parser.add_argument(
        "--pvc-root",
        type=Path,
        help="where claims are mounted: pvc://NAME/PATH is PVC_ROOT/NAME/PATH "
        "(default: $PVC_MOUNT_ROOT or /mnt/pvc)",
    )
    parser.add_argument(
        "--retries",
        type=_positive_int,
        default=RetryPolicy.attempts,
        help="attempts per request on transient errors (connection errors, timeouts, 5xx, "
        "throttling); 1 disables retries (default: %(default)s)",
    )
    parser.add_argument(
        "--retry-delay",
        type=_non_negative_float,
        default=RetryPolicy.base_delay,
        help="seconds before the first retry, doubled for each later one, with jitter "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--retry-max-delay",
        type=_non_negative_float,
        default=RetryPolicy.max_delay,
        help="upper bound of one retry delay in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=_non_negative_float,
        default=StorageSettings.timeout,
        help="connect/read timeout of one network request in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--max-workers",
        type=_positive_int,
        default=StorageSettings.max_workers,
        help="objects downloaded in parallel (default: %(default)s)",
    )
    parser.add_argument(
        "--progress-interval",
        type=_non_negative_float,
        default=StorageSettings.progress_interval,
        help="least seconds between two progress lines (default: %(default)s)",
    )
    parser.add_argument(
        "--no-unpack",
        action="store_true",
        help="keep a single downloaded .zip/.tar/.tar.gz/.tgz file as it is",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default: %(default)s)",
    )
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("arguments must be pairs: SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]")
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpx2", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    signal.signal(signal.SIGTERM, _terminate)

    overrides: dict[str, Any] = {
        "retry": RetryPolicy(args.retries, args.retry_delay, args.retry_max_delay),
        "timeout": args.timeout,
        "max_workers": args.max_workers,
        "progress_interval": args.progress_interval,
        "unpack_archives": not args.no_unpack,
    }
    if args.pvc_root is not None:
        overrides["pvc_root"] = args.pvc_root
    settings = StorageSettings.from_env(credentials_dir=args.credentials_dir, **overrides)
    pairs = list(zip(args.pairs[::2], args.pairs[1::2], strict=True))
    with Registry(settings) as registry:
        for uri, dest in pairs:
            try:
                download(
                    uri,
                    dest,
                    settings=settings,
                    cache_dir=args.cache_dir,
                    symlink=args.symlink,
                    registry=registry,
                )
            except StorageError as err:
                logger.error("download failed: %s (destination %s)", err, dest)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
