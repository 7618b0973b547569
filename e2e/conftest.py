"""Fixtures of the e2e suite: one cluster per session (shared by xdist workers),
one namespace per test module, and a dump of that namespace on failure."""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kss_e2e import Cluster, Kube, select_cluster
from kss_e2e.backend import BackendError


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """The cluster of this session: started once, shared by every xdist worker."""
    # The base temp dir's parent is common to all workers of one pytest run.
    shared = tmp_path_factory.getbasetemp().parent / "kss-e2e"
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        shared = tmp_path_factory.getbasetemp() / "kss-e2e"
    try:
        return select_cluster(shared)
    except BackendError as err:
        pytest.fail(f"no cluster for the e2e suite: {err}", pytrace=False)


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    return Kube(cluster)


def _namespace_name(request: pytest.FixtureRequest) -> str:
    module = Path(str(request.node.path)).stem.removeprefix("test_")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    base = re.sub(r"[^a-z0-9-]", "-", f"e2e-{module}-{worker}".lower())[:50].strip("-")
    return f"{base}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for the test module, deleted afterwards."""
    name = _namespace_name(request)
    kube.create_namespace(name)
    yield name
    if os.environ.get("KSS_E2E_KEEP_NAMESPACES") != "1":
        kube.delete_namespace(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the test namespace's objects, events and component logs to a failure."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    funcargs = getattr(item, "funcargs", {})
    namespace, kube = funcargs.get("namespace"), funcargs.get("kube")
    if not isinstance(namespace, str) or not isinstance(kube, Kube):
        return report
    try:
        dump = kube.dump_namespace(namespace)
    except Exception as err:  # a broken dump must not hide the test's own failure
        dump = f"(could not dump namespace {namespace}: {err!r})"
    report.sections.append((f"kubernetes: namespace {namespace}", dump))
    return report
