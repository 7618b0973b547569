"""The built-in runtimes (the package's YAML files, their one source) and their install."""

from __future__ import annotations

from typing import Any

from kserve_stack_controller.builtin_runtimes import (
    builtin_manifests,
    builtin_runtimes,
    install_builtin_runtimes,
)
from kubernetes.client.exceptions import ApiException


class RecordingKube:
    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.applied: list[dict[str, Any]] = []

    def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        if obj["metadata"]["name"] == self.refuse:
            raise ApiException(status=403, reason="Forbidden")
        self.applied.append(obj)
        return obj


def test_install_applies_each_with_the_image_asked_for() -> None:
    kube = RecordingKube(refuse="kserve-xgbserver")
    installed = install_builtin_runtimes(kube, image="reg.example/rt:1")  # type: ignore[arg-type]
    assert installed == ["kserve-lgbserver", "kserve-sklearnserver"]  # one refusal, others in
    for obj in kube.applied:
        assert obj["kind"] == "ClusterServingRuntime"
        assert {c["image"] for c in obj["spec"]["containers"]} == {"reg.example/rt:1"}
        assert (
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kserve-stack-controller"
        )
    shipped = {m["metadata"]["name"]: m for m in builtin_manifests()}
    assert shipped["kserve-lgbserver"]["spec"]["containers"][0]["image"] == (
        "kserve-stack/runtimes:0.1.0"
    ), "the image override must not leak into the shipped manifests"


def test_kserve_names_and_formats() -> None:
    by_name = {r.metadata.name: r for r in builtin_runtimes()}
    assert set(by_name) == {"kserve-sklearnserver", "kserve-xgbserver", "kserve-lgbserver"}
    formats = {n: r.spec.supported_model_formats[0].name for n, r in by_name.items()}  # type: ignore[index]
    assert formats == {"kserve-sklearnserver": "sklearn", "kserve-xgbserver": "xgboost",
                       "kserve-lgbserver": "lightgbm"}  # fmt: skip
    for runtime in by_name.values():
        assert runtime.spec.containers[0].args[0] in ("sklearn", "xgboost", "lightgbm")  # type: ignore[index]
