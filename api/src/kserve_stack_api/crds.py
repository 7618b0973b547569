"""The CRDs this project serves: names, versions, printer columns — and their models."""

from __future__ import annotations

from dataclasses import dataclass

from kserve_stack_api.base import ApiModel
from kserve_stack_api.inferencegraph import InferenceGraph
from kserve_stack_api.inferenceservice import InferenceService
from kserve_stack_api.llm import (
    LLMInferenceServiceConfigV1Alpha1,
    LLMInferenceServiceConfigV1Alpha2,
    LLMInferenceServiceV1Alpha1,
    LLMInferenceServiceV1Alpha2,
)
from kserve_stack_api.servingruntime import ClusterServingRuntime, ServingRuntime

GROUP = "serving.kserve.io"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class CrdVersion:
    name: str
    model: type[ApiModel]
    storage: bool = False
    served: bool = True
    status_subresource: bool = True


@dataclass(frozen=True)
class CrdDefinition:
    kind: str
    plural: str
    versions: tuple[CrdVersion, ...]
    scope: str = "Namespaced"
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = ("kserve-stack",)

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    def version(self, name: str) -> CrdVersion:
        for version in self.versions:
            if version.name == name:
                return version
        raise KeyError(f"{self.kind} has no version {name!r}")


_READY = PrinterColumn("Ready", ".status.conditions[?(@.type=='Ready')].status")
_REASON = PrinterColumn("Reason", ".status.conditions[?(@.type=='Ready')].reason")
_URL = PrinterColumn("URL", ".status.url")
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

_RUNTIME_COLUMNS = (
    PrinterColumn("Disabled", ".spec.disabled", "boolean"),
    PrinterColumn("ModelType", ".spec.supportedModelFormats[*].name"),
    PrinterColumn("Containers", ".spec.containers[*].name"),
    _AGE,
)

_LLM_COLUMNS = (
    _URL,
    _READY,
    _REASON,
    _AGE,
    PrinterColumn("URLs", ".status.addresses[*].url", priority=1),
)

CRDS: tuple[CrdDefinition, ...] = (
    CrdDefinition(
        kind="InferenceService",
        plural="inferenceservices",
        short_names=("isvc",),
        versions=(CrdVersion("v1beta1", InferenceService, storage=True),),
        printer_columns=(
            _URL,
            _READY,
            PrinterColumn(
                "Prev",
                ".status.components.predictor.traffic[?(@.tag=='prev')].percent",
                "integer",
            ),
            PrinterColumn(
                "Latest",
                ".status.components.predictor.traffic[?(@.latestRevision==true)].percent",
                "integer",
            ),
            _AGE,
        ),
    ),
    CrdDefinition(
        kind="ServingRuntime",
        plural="servingruntimes",
        versions=(CrdVersion("v1alpha1", ServingRuntime, storage=True),),
        printer_columns=_RUNTIME_COLUMNS,
    ),
    CrdDefinition(
        kind="ClusterServingRuntime",
        plural="clusterservingruntimes",
        scope="Cluster",
        versions=(CrdVersion("v1alpha1", ClusterServingRuntime, storage=True),),
        printer_columns=_RUNTIME_COLUMNS,
    ),
    CrdDefinition(
        kind="InferenceGraph",
        plural="inferencegraphs",
        short_names=("ig",),
        versions=(CrdVersion("v1alpha1", InferenceGraph, storage=True),),
        printer_columns=(_URL, _READY, _AGE),
    ),
    CrdDefinition(
        kind="LLMInferenceService",
        plural="llminferenceservices",
        short_names=("llmisvc",),
        versions=(
            CrdVersion("v1alpha1", LLMInferenceServiceV1Alpha1),
            CrdVersion("v1alpha2", LLMInferenceServiceV1Alpha2, storage=True),
        ),
        printer_columns=_LLM_COLUMNS,
    ),
    CrdDefinition(
        kind="LLMInferenceServiceConfig",
        plural="llminferenceserviceconfigs",
        short_names=("llmisvcconfig",),
        versions=(
            CrdVersion("v1alpha1", LLMInferenceServiceConfigV1Alpha1),
            CrdVersion("v1alpha2", LLMInferenceServiceConfigV1Alpha2, storage=True),
        ),
        printer_columns=(_AGE,),
    ),
)


def crd_for_kind(kind: str) -> CrdDefinition:
    for crd in CRDS:
        if crd.kind == kind:
            return crd
    raise KeyError(f"kserve-stack serves no kind {kind!r}")
