"""The built-in runtimes: one source (the chart's files), the package copy identical."""

from __future__ import annotations

from controller_factories import REPO
from kserve_stack_controller.builtin_runtimes import builtin_runtimes

CHART = REPO / "charts" / "kserve-stack" / "files" / "runtimes"
PACKAGE = REPO / "controller" / "src" / "kserve_stack_controller" / "builtin_runtimes"


def test_package_copy_matches_the_chart() -> None:
    chart = {p.name: p.read_bytes() for p in CHART.glob("*.yaml")}
    package = {p.name: p.read_bytes() for p in PACKAGE.glob("*.yaml")}
    assert chart == package, "run make controller-generate"


def test_kserve_names_and_formats() -> None:
    by_name = {r.metadata.name: r for r in builtin_runtimes()}
    assert set(by_name) == {"kserve-sklearnserver", "kserve-xgbserver", "kserve-lgbserver"}
    formats = {n: r.spec.supported_model_formats[0].name for n, r in by_name.items()}  # type: ignore[index]
    assert formats == {"kserve-sklearnserver": "sklearn", "kserve-xgbserver": "xgboost",
                       "kserve-lgbserver": "lightgbm"}  # fmt: skip
    for runtime in by_name.values():
        assert runtime.spec.containers[0].args[0] in ("sklearn", "xgboost", "lightgbm")  # type: ignore[index]
