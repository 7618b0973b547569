"""Fixtures of the reliability tests (helpers in rel_support.py, importable from the tests
because this folder is put on sys.path here)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kss_e2e import Cluster, Kube
from rel_support import RUNTIMES, ControllerProcess


@pytest.fixture(scope="module")
def runtimes(kube: Kube) -> None:
    """The built-in ClusterServingRuntimes (server-side apply: idempotent, shared)."""
    for path in sorted(RUNTIMES.glob("*.yaml")):
        kube.apply(path)


MakeController = Callable[..., ControllerProcess]


@pytest.fixture
def make_controller(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[MakeController]:
    """Makes controllers for the test's namespace (the cluster's kubeconfig unless told
    another); every one is stopped afterwards."""
    made: list[ControllerProcess] = []

    def make(kubeconfig: Path | None = None, args: tuple[str, ...] = ()) -> ControllerProcess:
        log = tmp_path / f"controller-{len(made)}.log"
        proc = ControllerProcess(kubeconfig or cluster.kubeconfig, namespace, log, args)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()
        if os.environ.get("KSS_E2E_SHOW_CONTROLLER_LOG") == "1":
            print(proc.log_text())
