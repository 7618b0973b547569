"""Real servers on 127.0.0.1 for the storage initializer's tests.

* ``moto_s3``: moto's S3 server in a subprocess (the S3 protocol, as boto3 speaks it).
* ``gcs_emulator``: gcp-storage-emulator in a subprocess (the GCS JSON API).
* ``http_files``: a threaded HTTP server serving files the test registers, with chosen
  headers, injected failures and a request log.
* ``hf_hub``: a threaded HTTP server speaking the Hugging Face hub endpoints that
  ``snapshot_download`` uses (model info, tree listing, resolve).

Each fixture picks a free port, so the tests run under pytest-xdist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import httpx
import pytest
from kserve_stack_runtimes.storage.settings import (
    GCSSettings,
    HFSettings,
    RetryPolicy,
    S3Settings,
    StorageSettings,
)

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class S3Fixture:
    endpoint: str
    bucket: str
    client: Any
    settings: StorageSettings

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


@pytest.fixture
def moto_s3(moto_endpoint: str) -> S3Fixture:
    """A fresh bucket on the moto server, a client for it, and settings that reach it."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    settings = StorageSettings(
        s3=S3Settings(
            endpoint_url=moto_endpoint,
            region="us-east-1",
            access_key_id="testing",
            secret_access_key="testing",
        ),
        retry=FAST_RETRY,
        progress_interval=0.0,
    )
    return S3Fixture(moto_endpoint, bucket, client, settings)


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gcp_storage_emulator",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--in-memory",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/storage/v1/b?project=test", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class GCSFixture:
    endpoint: str
    bucket: str
    settings: StorageSettings

    def put(self, name: str, body: bytes) -> None:
        """Upload with a plain JSON-API media upload (independent of the client under test)."""
        r = httpx.post(
            f"{self.endpoint}/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "media", "name": name},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        r.raise_for_status()


@pytest.fixture
def gcs(gcs_endpoint: str) -> GCSFixture:
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    r = httpx.post(
        f"{gcs_endpoint}/storage/v1/b", params={"project": "test"}, json={"name": bucket}
    )
    r.raise_for_status()
    settings = StorageSettings(
        gcs=GCSSettings(emulator_host=gcs_endpoint, project="test"),
        retry=FAST_RETRY,
        progress_interval=0.0,
    )
    return GCSFixture(gcs_endpoint, bucket, settings)


# --- a small HTTP file server ---------------------------------------------------------------


@dataclass
class Route:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    fail_first: int = 0
    fail_status: int = 503
    status: int = 200
    delay_per_chunk: float = 0.0
    head_allowed: bool = True


class FileServer:
    """Serves registered paths; records ``(method, path)`` of every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, head: bool) -> None:
                path = urlsplit(self.path).path
                with server._lock:
                    server.requests.append((self.command, path))
                    route = server.routes.get(path)
                    failing = route is not None and route.fail_first > 0 and not head
                    if failing and route is not None:
                        route.fail_first -= 1
                if route is None:
                    self._reply(404, b"not found", {})
                    return
                if head and not route.head_allowed:
                    self._reply(405, b"", {})
                    return
                if failing:
                    self._reply(route.fail_status, b"try again", {})
                    return
                headers = {"Content-Length": str(len(route.body)), **route.headers}
                self.send_response(route.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if head:
                    return
                if route.delay_per_chunk:
                    for i in range(0, len(route.body), 1024):
                        self.wfile.write(route.body[i : i + 1024])
                        self.wfile.flush()
                        time.sleep(route.delay_per_chunk)
                else:
                    self.wfile.write(route.body)

            def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_HEAD(self) -> None:
                self._serve(head=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def add(self, path: str, body: bytes, **kwargs: Any) -> str:
        self.routes[path] = Route(body=body, **kwargs)
        return self.url + path

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r == (method, path))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_files() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def http_settings() -> StorageSettings:
    return StorageSettings(retry=FAST_RETRY, progress_interval=0.0, timeout=10.0)


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


@pytest.fixture
def md5_b64() -> Callable[[bytes], str]:
    return content_md5


# --- a Hugging Face hub subset --------------------------------------------------------------


@dataclass
class HubRepo:
    commits: dict[str, dict[str, bytes]]  # commit sha -> files
    refs: dict[str, str]  # branch/tag -> commit sha
    private_token: str | None = None


class HubServer:
    """Answers ``/api/models/{id}/revision/{rev}``, ``/api/models/{id}/tree/{sha}`` and
    ``/{id}/resolve/{sha}/{path}`` like the hub does for plain (non-LFS, non-Xet) files."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.fail_next: int = 0
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                self._json(
                    status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message}
                )

            def _repo(self, repo_id: str) -> HubRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return None
                if repo.private_token is not None:
                    auth = self.headers.get("Authorization")
                    if auth != f"Bearer {repo.private_token}":
                        return None
                return repo

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                hub.requests.append((self.command, path, self.headers.get("Authorization")))
                if hub.fail_next > 0:
                    hub.fail_next -= 1
                    self._json(503, {"error": "busy"})
                    return
                if path.startswith("/api/models/"):
                    rest = path[len("/api/models/") :]
                    for marker in ("/revision/", "/tree/"):
                        if marker in rest:
                            repo_id, _, tail = rest.partition(marker)
                            break
                    else:
                        self._error(404, "EntryNotFound", "unknown endpoint")
                        return
                    repo = self._repo(repo_id)
                    if repo is None:
                        self._error(401, "RepoNotFound", "Repository not found")
                        return
                    if marker == "/revision/":
                        sha = repo.refs.get(tail, tail if tail in repo.commits else None)
                        if sha is None:
                            self._error(404, "RevisionNotFound", f"Invalid rev id: {tail}")
                            return
                        files = repo.commits[sha]
                        self._json(
                            200,
                            {
                                "id": repo_id,
                                "modelId": repo_id,
                                "sha": sha,
                                "private": repo.private_token is not None,
                                "siblings": [{"rfilename": f} for f in sorted(files)],
                            },
                        )
                        return
                    sha = tail.split("/", 1)[0]
                    files = repo.commits.get(sha)
                    if files is None:
                        self._error(404, "RevisionNotFound", f"Invalid rev id: {sha}")
                        return
                    entries = []
                    dirs: set[str] = set()
                    for name, body in sorted(files.items()):
                        segments = name.split("/")[:-1]
                        for i in range(len(segments)):
                            dirs.add("/".join(segments[: i + 1]))
                        entries.append(
                            {
                                "type": "file",
                                "oid": hashlib.sha1(body).hexdigest(),
                                "size": len(body),
                                "path": name,
                            }
                        )
                    entries += [
                        {"type": "directory", "oid": "0" * 40, "size": 0, "path": d}
                        for d in sorted(dirs)
                    ]
                    self._json(200, entries)
                    return
                if "/resolve/" in path:
                    repo_id, _, tail = path.lstrip("/").partition("/resolve/")
                    sha, _, name = tail.partition("/")
                    repo = self._repo(repo_id)
                    if repo is None:
                        self._error(401, "RepoNotFound", "Repository not found")
                        return
                    sha = repo.refs.get(sha, sha)
                    files = repo.commits.get(sha)
                    if files is None or name not in files:
                        self._error(404, "EntryNotFound", f"{name} not found")
                        return
                    body = files[name]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", f'"{hashlib.sha1(body).hexdigest()}"')
                    self.send_header("X-Repo-Commit", sha)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                self._error(404, "EntryNotFound", "unknown endpoint")

            def do_GET(self) -> None:
                self._handle()

            def do_HEAD(self) -> None:
                self._handle()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        refs: dict[str, str] | None = None,
        token: str | None = None,
    ) -> str:
        sha = hashlib.sha1(
            json.dumps(sorted((k, v.hex()) for k, v in files.items())).encode()
        ).hexdigest()
        repo = self.repos.setdefault(repo_id, HubRepo(commits={}, refs={}, private_token=token))
        repo.commits[sha] = files
        repo.refs.update(refs if refs is not None else {"main": sha})
        return sha

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hf_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    # keep huggingface_hub's caches and token lookup inside the test
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    server = HubServer()
    yield server
    server.close()


@pytest.fixture
def hf_settings(hf_hub: HubServer) -> StorageSettings:
    return StorageSettings(
        hf=HFSettings(endpoint=hf_hub.url),
        retry=FAST_RETRY,
        progress_interval=0.0,
        timeout=10.0,
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every variable the settings read, so a test sets exactly what it means."""
    for name in list(os.environ):
        if name.startswith(("HF_HOME", "HF_HUB_")):
            continue
        if (
            name.startswith(("AWS_", "S3_", "GOOGLE_", "GCS_", "HF_", "STORAGE_", "PVC_"))
            or name == "awsAnonymousCredential"
        ):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch
