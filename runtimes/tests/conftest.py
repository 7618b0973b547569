"""Fixtures: tiny models trained here, and real model-server processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iris_like(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated classes in 4 features, like iris."""
    rng = np.random.default_rng(seed)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    y = np.repeat(np.arange(3), n // 3)
    x = centers[y] + rng.normal(0, 0.15, size=(len(y), 4))
    return x.astype(np.float32), y


SAMPLE = [[5.0, 3.4, 1.5, 0.2], [6.6, 3.0, 5.6, 2.0]]
SAMPLE_CLASSES = [0, 2]


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = iris_like()
    d = tmp_path_factory.mktemp("sklearn")
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), d / "model.joblib")
    return d


class ServerProcess:
    """A model server started as a real process; stopped (SIGTERM) by the fixture."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        cmd = [
            sys.executable,
            "-m",
            "kserve_stack_runtimes.cli",
            *args,
            "--host=127.0.0.1",
            f"--http_port={self.http_port}",
            f"--grpc_port={self.grpc_port}",
        ]
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ks-server-{self.http_port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_server() -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None, ready: bool = True) -> ServerProcess:
        server = ServerProcess(args, env)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start  # type: ignore[misc]
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sklearn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = iris_like()
    d = tmp_path_factory.mktemp("sk-module")
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), d / "model.joblib")
    server = ServerProcess(
        ["sklearn", "--model_name=iris", f"--model_dir={d}", "--max_request_body_bytes=100000"]
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
