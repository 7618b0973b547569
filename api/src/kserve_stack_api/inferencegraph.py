"""InferenceGraph, serving.kserve.io/v1alpha1: a graph of routing nodes over services."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from kserve_stack_api.base import ApiModel, Invariant
from kserve_stack_api.core import Condition, JsonObject, ObjectMeta, ResourceRequirements

RouterType = Literal["Sequence", "Splitter", "Ensemble", "Switch"]

#: The name of the node every request enters.
ROOT_NODE = "root"

# Bounds that keep the API server's CEL cost estimate finite.
NAME_MAX = 253
URL_MAX = 2048
MAX_NODES = 64
MAX_STEPS = 64


class InferenceStep(ApiModel):
    """One step of a node: a target (node, service or URL) and how it is chosen."""

    name: str | None = Field(
        default=None, max_length=NAME_MAX, description="Unique name of the step in its node."
    )
    node_name: str | None = Field(
        default=None, max_length=NAME_MAX, description="Another node of the graph."
    )
    service_name: str | None = Field(
        default=None, max_length=NAME_MAX, description="An InferenceService."
    )
    service_url: str | None = Field(
        default=None, max_length=URL_MAX, description="Any HTTP(S) endpoint."
    )
    data: str | None = Field(
        default=None,
        max_length=NAME_MAX,
        description="'$request' or '$response' (the default in a Sequence).",
    )
    weight: int | None = Field(default=None, ge=0, le=100, description="Splitter share.")
    condition: str | None = Field(
        default=None, max_length=URL_MAX, description="A GJSON condition (Switch)."
    )
    dependency: Literal["Soft", "Hard"] | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="[has(self.nodeName), has(self.serviceName), has(self.serviceUrl)]"
            ".filter(x, x).size() == 1",
            message="a step needs exactly one of nodeName, serviceName, serviceUrl",
            check=lambda s: [s.node_name, s.service_name, s.service_url].count(None) == 2,
        ),
    )


def _splitter_weights(router: InferenceRouter) -> bool:
    if router.router_type != "Splitter":
        return True
    return sum(step.weight or 0 for step in router.steps or []) == 100


class InferenceRouter(ApiModel):
    router_type: RouterType
    steps: list[InferenceStep] | None = Field(default=None, max_length=MAX_STEPS)

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel="self.routerType != 'Splitter' || !has(self.steps)"
            " || self.steps.map(s, has(s.weight) ? s.weight : 0).sum() == 100",
            message="the weights of a Splitter's steps must sum to 100",
            check=_splitter_weights,
            field="steps",
        ),
        Invariant(
            cel="self.routerType != 'Switch' || !has(self.steps)"
            " || self.steps.all(s, has(s.condition))",
            message="every step of a Switch needs a condition",
            check=lambda r: r.router_type != "Switch" or all(s.condition for s in r.steps or []),
            field="steps",
        ),
    )


class InferenceGraphSpec(ApiModel):
    nodes: dict[str, InferenceRouter] = Field(
        max_length=MAX_NODES, description="The graph's nodes by name; requests enter at 'root'."
    )
    resources: ResourceRequirements | None = None
    affinity: JsonObject | None = None
    timeout: int | None = Field(default=None, ge=1, description="Request timeout in seconds.")
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=0)
    scale_target: int | None = Field(default=None, ge=1)
    scale_metric: Literal["cpu", "memory", "concurrency", "rps"] | None = None

    invariants: ClassVar[tuple[Invariant, ...]] = (
        Invariant(
            cel=f"'{ROOT_NODE}' in self.nodes",
            message=f"the graph needs a node named '{ROOT_NODE}'",
            check=lambda g: ROOT_NODE in g.nodes,
            field="nodes",
        ),
        Invariant(
            cel="self.nodes.all(n, !has(self.nodes[n].steps)"
            " || self.nodes[n].steps.all(s, !has(s.nodeName) || s.nodeName in self.nodes))",
            message="a step's nodeName must name a node of the graph",
            check=lambda g: all(
                s.node_name is None or s.node_name in g.nodes
                for node in g.nodes.values()
                for s in node.steps or []
            ),
            field="nodes",
        ),
    )


class InferenceGraphStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] | None = None
    url: str | None = None
    deployment_mode: str | None = None


class InferenceGraph(ApiModel):
    api_version: Literal["serving.kserve.io/v1alpha1"] = "serving.kserve.io/v1alpha1"
    kind: Literal["InferenceGraph"] = "InferenceGraph"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceGraphSpec
    status: InferenceGraphStatus | None = None
