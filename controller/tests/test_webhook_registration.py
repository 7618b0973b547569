"""The webhook configurations the controller registers for itself (``--webhook-url``)."""

from __future__ import annotations

from typing import Any

from kserve_stack_controller.state import Settings
from kserve_stack_controller.webhooks import webhook_configurations


def _validating(settings: Settings) -> dict[str, Any]:
    configs = webhook_configurations(settings, b"ca")
    hook: dict[str, Any] = next(
        c for c in configs if c["kind"] == "ValidatingWebhookConfiguration"
    )["webhooks"][0]
    return hook


def test_cluster_wide_controller_validates_cluster_serving_runtimes() -> None:
    hook = _validating(Settings(webhook_url="https://127.0.0.1:9443"))
    assert "clusterservingruntimes" in hook["rules"][0]["resources"]
    assert "namespaceSelector" not in hook
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/validate"


def test_namespaced_controller_leaves_cluster_scoped_kinds_alone() -> None:
    # namespaceSelector does not apply to cluster-scoped objects: gating them from a
    # controller that owns two namespaces would block every ClusterServingRuntime of the
    # cluster whenever that controller is down.
    hook = _validating(Settings(namespaces=["b", "a"], webhook_url="https://h:1"))
    assert "clusterservingruntimes" not in hook["rules"][0]["resources"]
    assert "inferenceservices" in hook["rules"][0]["resources"]
    expr = hook["namespaceSelector"]["matchExpressions"][0]
    assert expr["values"] == ["a", "b"]
    assert hook["failurePolicy"] == "Fail"
