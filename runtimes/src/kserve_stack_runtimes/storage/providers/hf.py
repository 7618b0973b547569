"""``hf://ORG/MODEL[:REVISION]``: a Hugging Face hub repository through huggingface_hub.

``snapshot_download`` fetches the files into the staging directory; HF_ENDPOINT selects the hub
(a mirror or a private hub) and HF_TOKEN authenticates. The revision (branch, tag or commit,
default ``main``) is resolved to a commit first, which is also the cache fingerprint.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils.tqdm import disable_progress_bars

from ..errors import (
    AccessDeniedError,
    InvalidURIError,
    NotFoundError,
    StorageError,
    TransientError,
)
from ..progress import Progress, watch_directory
from ..retry import retry_call
from ..settings import StorageSettings

_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_URI = re.compile(rf"^hf://(?P<repo>(?:{_PART}/)?{_PART})(?::(?P<rev>[^\s:]+))?/?$")


def parse(uri: str) -> tuple[str, str]:
    """``hf://org/model:rev`` -> ``('org/model', 'rev')``; the revision defaults to ``main``."""
    match = _URI.match(uri)
    if match is None:
        raise InvalidURIError("expected hf://ORG/MODEL[:REVISION] or hf://MODEL[:REVISION]")
    repo = match["repo"]
    if ".." in repo or repo.endswith((".", "-")):
        raise InvalidURIError(f"invalid repository id {repo!r}")
    return repo, match["rev"] or "main"


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def translate(err: Exception) -> StorageError:
    """Map a huggingface_hub / httpx2 exception to the storage error hierarchy."""
    if isinstance(err, GatedRepoError):
        return AccessDeniedError(f"gated repository, set HF_TOKEN: {_first_line(err)}")
    if isinstance(err, RepositoryNotFoundError):
        return NotFoundError(f"repository not found (or private: set HF_TOKEN): {_first_line(err)}")
    if isinstance(err, (RevisionNotFoundError, RemoteEntryNotFoundError)):
        return NotFoundError(_first_line(err))
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else 0
        if status in (401, 403):
            return AccessDeniedError(_first_line(err))
        if status == 429 or status >= 500:
            return TransientError(_first_line(err))
        return StorageError(_first_line(err))
    if isinstance(err, LocalEntryNotFoundError):
        # snapshot_download's answer to a hub it could not reach
        cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
        return TransientError(f"hub unreachable: {_first_line(cause)}")
    if isinstance(err, httpx2.TransportError):
        return TransientError(f"{type(err).__name__}: {err}")
    raise err


_ERRORS = (HfHubHTTPError, LocalEntryNotFoundError, httpx2.TransportError)


class HFSource:
    def __init__(self, uri: str, settings: StorageSettings) -> None:
        self.uri = uri
        self.settings = settings
        self.repo_id, self.revision = parse(uri)
        self._commit: str | None = None

    @property
    def local_path(self) -> Path | None:
        return None

    def _api(self) -> HfApi:
        return HfApi(endpoint=self.settings.hf.endpoint, token=self.settings.hf.token or False)

    def commit(self) -> str:
        """The commit the revision points at now."""
        if self._commit is None:

            def resolve() -> str:
                try:
                    info = self._api().model_info(
                        self.repo_id, revision=self.revision, timeout=self.settings.timeout
                    )
                except _ERRORS as err:
                    raise translate(err) from err
                if not info.sha:
                    raise StorageError("the hub did not report a commit for this revision")
                return info.sha

            self._commit = retry_call(
                resolve, policy=self.settings.retry, what=f"resolving {self.uri}"
            )
        return self._commit

    def fingerprint(self) -> str | None:
        return f"hf:{self.repo_id}@{self.commit()}"

    def fetch(self, into: Path, progress: Progress) -> None:
        commit = self.commit()
        disable_progress_bars()

        def run() -> None:
            try:
                snapshot_download(
                    self.repo_id,
                    revision=commit,
                    local_dir=into,
                    endpoint=self.settings.hf.endpoint,
                    token=self.settings.hf.token or False,
                    max_workers=self.settings.max_workers,
                    etag_timeout=self.settings.timeout,
                )
            except _ERRORS as err:
                raise translate(err) from err

        with watch_directory(progress, into):
            retry_call(run, policy=self.settings.retry, what=f"downloading {self.uri}")
        shutil.rmtree(into / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
        files = [p for p in into.rglob("*") if p.is_file()]
        progress.set_totals(len(files), None)
        progress.files_done = len(files)


class HFProvider:
    def __init__(self, settings: StorageSettings) -> None:
        self.settings = settings

    def open(self, uri: str) -> HFSource:
        return HFSource(uri, self.settings)

    def close(self) -> None:
        pass
