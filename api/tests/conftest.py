from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "docs" / "samples"
REFERENCE_CRDS = REPO.parent / "shared" / "crds" / "reference-kserve"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Tests that take `sample` run once per document under docs/samples.
    if "sample" in metafunc.fixturenames:
        metafunc.parametrize("sample", sample_documents())


def sample_documents() -> list[pytest.ParameterSet]:
    params = []
    for path in sorted(SAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            label = str(path.relative_to(SAMPLES)) + (f"#{index}" if index else "")
            params.append(pytest.param(doc, id=label))
    return params
