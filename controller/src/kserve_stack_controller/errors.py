"""The controller's exceptions: each carries a KServe-style ``reason`` for status and events."""

from __future__ import annotations


class ReconcileError(Exception):
    """The desired state cannot be built; ``reason`` goes into the Ready condition."""

    reason = "ReconcileFailed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSupportingRuntimeError(ReconcileError):
    """No ServingRuntime or ClusterServingRuntime serves the model (KServe's reason)."""

    reason = "NoSupportingRuntime"


class RuntimeNotFoundError(ReconcileError):
    """``model.runtime`` names a runtime that does not exist."""

    reason = "RuntimeNotRecognized"


class RuntimeDisabledError(ReconcileError):
    reason = "RuntimeDisabled"


class RuntimeUnsupportedError(ReconcileError):
    """The named runtime does not serve the model's format or protocol."""

    reason = "RuntimeNotRecognized"


class InvalidSpecError(ReconcileError):
    reason = "InvalidSpec"


class UnsupportedDeploymentModeError(ReconcileError):
    reason = "UnsupportedDeploymentMode"
