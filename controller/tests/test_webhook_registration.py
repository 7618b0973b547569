"""The webhook configurations the controller registers for itself (``--webhook-url``)."""

from __future__ import annotations

from typing import Any

from kserve_stack_controller.state import Settings
from kserve_stack_controller.webhooks import webhook_configurations


def _validating(settings: Settings, index: int = 0) -> dict[str, Any]:
    configs = webhook_configurations(settings, b"ca")
    hook: dict[str, Any] = next(
        c for c in configs if c["kind"] == "ValidatingWebhookConfiguration"
    )["webhooks"][index]
    return hook


def test_cluster_wide_controller_validates_cluster_serving_runtimes() -> None:
    settings = Settings(webhook_url="https://127.0.0.1:9443")
    hook, runtimes = _validating(settings), _validating(settings, 1)
    assert hook["rules"][0]["resources"] == [
        "inferenceservices", "inferencegraphs", "llminferenceservices",
        "llminferenceserviceconfigs"]  # fmt: skip
    assert hook["failurePolicy"] == "Fail"
    assert runtimes["rules"][0]["resources"] == ["servingruntimes", "clusterservingruntimes"]
    # Runtimes installed with the webhook (the chart's built-in ones) are not blocked while
    # the controller starts: their CRD's CEL rules still hold.
    assert runtimes["failurePolicy"] == "Ignore"
    assert "namespaceSelector" not in hook
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/validate"


def test_by_service_for_installers() -> None:
    settings = Settings(webhook_service="svc", webhook_namespace="sys")
    hook = _validating(settings)
    assert hook["clientConfig"] == {"service": {"namespace": "sys", "name": "svc",
                                                "path": "/validate", "port": 443},
                                    "caBundle": "Y2E="}  # fmt: skip


def test_namespaced_controller_leaves_cluster_scoped_kinds_alone() -> None:
    # namespaceSelector does not apply to cluster-scoped objects: gating them from a
    # controller that owns two namespaces would block every ClusterServingRuntime of the
    # cluster whenever that controller is down.
    settings = Settings(namespaces=["b", "a"], webhook_url="https://h:1")
    hook = _validating(settings)
    assert _validating(settings, 1)["rules"][0]["resources"] == ["servingruntimes"]
    assert "inferenceservices" in hook["rules"][0]["resources"]
    expr = hook["namespaceSelector"]["matchExpressions"][0]
    assert expr["values"] == ["a", "b"]
    assert hook["failurePolicy"] == "Fail"
