"""Fixtures: tiny models trained here, and real model-server processes on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).parent))

from runtimes_support import ServerProcess, iris_like


@pytest.fixture(scope="session")
def sklearn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = iris_like()
    d = tmp_path_factory.mktemp("sklearn")
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), d / "model.joblib")
    return d


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(
        args: list[str], env: dict[str, str] | None = None, ready: bool = True
    ) -> ServerProcess:
        server = ServerProcess(args, env)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sklearn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
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
