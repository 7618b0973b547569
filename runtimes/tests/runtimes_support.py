"""Test support of the runtimes tests: free ports, tiny data, real server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


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
