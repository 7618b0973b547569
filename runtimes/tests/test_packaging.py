"""How the runtimes are built: wheels compile the gRPC transport (mypyc), editable installs do
not, and the tests run on whichever build they were started for (`make runtimes-test-compiled`
sets KSS_RUNTIMES_COMPILED=1 and puts the unpacked wheel on PYTHONPATH)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest

RUNTIMES = Path(__file__).resolve().parents[1]
COMPILED = (
    "kserve_stack_runtimes.transports.h2grpc",
    "kserve_stack_runtimes.transports.h2answers",
    "kserve_stack_runtimes.transports.grpc",
    "kserve_stack_runtimes.transports.infer_wire",
    "kserve_stack_runtimes.transports.contents",
)


def _backend() -> ModuleType:
    path = RUNTIMES / "build_support" / "compiled_wheel.py"
    spec = importlib.util.spec_from_file_location("compiled_wheel", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", COMPILED)
def test_the_transport_runs_the_build_the_tests_were_started_for(name: str) -> None:
    # Found, not imported: the gRPC modules' protobuf symbols would clash with tritonclient's,
    # which the client tests import into every test process.
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    origin = Path(spec.origin)
    compiled = origin.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    if os.environ.get("KSS_RUNTIMES_COMPILED") == "1":
        assert compiled, f"{name} should come from the built wheel, compiled; it is {origin}"
        assert RUNTIMES / "src" not in origin.parents, origin
        assert origin.with_name(origin.name.split(".")[0] + ".py").is_file()  # shipped beside
    else:  # editable: what runs is the source file as it is now, never a stale build of it
        assert origin.suffix == ".py", origin
        assert RUNTIMES / "src" in origin.parents, origin
        assert not list(origin.parent.glob(origin.stem + ".*.so")), "a compiled copy in src/"


def test_wheels_need_the_pinned_mypyc_unless_pure(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    monkeypatch.chdir(RUNTIMES)  # build hooks run in the project's folder
    monkeypatch.delenv("KSS_RUNTIMES_PURE", raising=False)
    assert backend.MYPYC in backend.get_requires_for_build_wheel({})
    assert backend.MYPYC not in backend.get_requires_for_build_wheel({"pure": "1"})
    monkeypatch.setenv("KSS_RUNTIMES_PURE", "1")
    assert backend.MYPYC not in backend.get_requires_for_build_wheel({})


def test_mypyc_pin_is_the_locked_mypy() -> None:
    lock = (RUNTIMES.parent / "uv.lock").read_text()
    locked = re.search(r'\[\[package\]\]\nname = "mypy"\nversion = "([^"]+)"', lock)
    assert locked is not None
    assert f"mypy=={locked[1]}" == _backend().MYPYC


def test_setup_compiles_files_that_exist() -> None:
    setup = (RUNTIMES / "setup.py").read_text()
    listed = re.findall(r'"(src/[^"]+\.py)"', setup)
    assert sorted(listed) == sorted("src/" + name.replace(".", "/") + ".py" for name in COMPILED), (
        "setup.py's COMPILED and this test's list disagree"
    )
    for path in listed:
        assert (RUNTIMES / path).is_file(), path
