"""Runtime selection, as KServe does it.

A model names its runtime (``model.runtime``), or one is picked among the runtimes of the
InferenceService's namespace first, then the cluster's: enabled, not multi-model, serving
the model's format (and version, when both state one) over the model's protocol, with
``autoSelect: true``. Among several, the highest ``priority`` wins (a runtime without a
priority ranks below any with one); ties go to the namespace runtime, then the name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kserve_stack_api.inferenceservice import ModelFormat
from kserve_stack_api.servingruntime import (
    ClusterServingRuntime,
    ServingRuntime,
    ServingRuntimeSpec,
    SupportedModelFormat,
)

from kserve_stack_controller.errors import (
    NoSupportingRuntimeError,
    RuntimeDisabledError,
    RuntimeNotFoundError,
    RuntimeUnsupportedError,
)


@dataclass(frozen=True)
class SelectedRuntime:
    """The runtime chosen for a model: its name, whether it is cluster-scoped, its spec."""

    name: str
    cluster_scoped: bool
    spec: ServingRuntimeSpec

    @property
    def kind(self) -> str:
        return "ClusterServingRuntime" if self.cluster_scoped else "ServingRuntime"


def _versions_match(model: str | None, supported: str | None) -> bool:
    """A version stated on both sides must agree on the major (KServe compares the prefix)."""
    if not model or not supported:
        return True
    return model == supported or model.split(".")[0] == supported.split(".")[0]


def supporting_format(
    spec: ServingRuntimeSpec, model_format: ModelFormat
) -> SupportedModelFormat | None:
    """The entry of ``supportedModelFormats`` that serves ``model_format``, if any."""
    for supported in spec.supported_model_formats or ():
        if supported.name.lower() == model_format.name.lower() and _versions_match(
            model_format.version, supported.version
        ):
            return supported
    return None


def _speaks(spec: ServingRuntimeSpec, protocol: str) -> bool:
    # A runtime that lists no protocol speaks KServe's default, v1.
    return protocol in (spec.protocol_versions or ["v1"])


def _why_not(spec: ServingRuntimeSpec, model_format: ModelFormat, protocol: str) -> str | None:
    if spec.disabled:
        return "is disabled"
    if spec.multi_model:
        return "is a multi-model runtime"
    if supporting_format(spec, model_format) is None:
        version = f" version {model_format.version}" if model_format.version else ""
        return f"does not support model format {model_format.name}{version}"
    if not _speaks(spec, protocol):
        return f"does not speak protocol {protocol}"
    return None


def select_runtime(
    model_format: ModelFormat,
    protocol: str,
    namespace_runtimes: Sequence[ServingRuntime],
    cluster_runtimes: Sequence[ClusterServingRuntime],
    requested: str | None = None,
) -> SelectedRuntime:
    """The runtime for a model, or an error whose reason and message say why there is none."""
    candidates = [
        SelectedRuntime(rt.metadata.name or "", False, rt.spec) for rt in namespace_runtimes
    ] + [SelectedRuntime(rt.metadata.name or "", True, rt.spec) for rt in cluster_runtimes]
    if requested:
        named = [c for c in candidates if c.name == requested]
        if not named:
            raise RuntimeNotFoundError(
                f"no ServingRuntime or ClusterServingRuntime named {requested!r}"
            )
        chosen = named[0]  # the namespace runtime shadows a cluster one of the same name
        if chosen.spec.disabled:
            raise RuntimeDisabledError(f"{chosen.kind} {requested!r} is disabled")
        problem = _why_not(chosen.spec, model_format, protocol)
        if problem is not None:
            raise RuntimeUnsupportedError(f"{chosen.kind} {requested!r} {problem}")
        return chosen

    ranked: list[tuple[int, int, str, SelectedRuntime]] = []
    for order, candidate in enumerate(candidates):
        if _why_not(candidate.spec, model_format, protocol) is not None:
            continue
        supported = supporting_format(candidate.spec, model_format)
        if supported is None or not supported.auto_select:
            continue
        priority = supported.priority or 0
        ranked.append((-priority, int(candidate.cluster_scoped), f"{order:06d}", candidate))
    if not ranked:
        version = f" version {model_format.version}" if model_format.version else ""
        raise NoSupportingRuntimeError(
            f"no runtime found to support predictor with model type {model_format.name}"
            f"{version} and protocol version {protocol} (none of {len(candidates)} runtimes "
            "is enabled, single-model, auto-selectable and serves both)"
        )
    ranked.sort(key=lambda item: item[:3])
    return ranked[0][3]
