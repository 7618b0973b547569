"""The InferenceService's status, computed from its children (never remembered).

KServe's conditions: PredictorReady, TransformerReady, ExplainerReady (each only for the
components the service has), IngressReady and Ready (all of them), plus Stopped when the
stop annotation is set; ``url``, ``address``, ``components`` (revisions, traffic) and
``modelStatus`` (transition status, model states, the last failure with its reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kserve_stack_controller.builders.inferenceservice import Plan
from kserve_stack_controller.errors import ReconcileError

JsonDict = dict[str, Any]
CONDITION_OF = {
    "predictor": "PredictorReady",
    "transformer": "TransformerReady",
    "explainer": "ExplainerReady",
}


@dataclass(frozen=True)
class WorkloadState:
    ready: bool
    reason: str
    message: str
    scaled_to_zero: bool = False


def deployment_state(deployment: Mapping[str, Any] | None) -> WorkloadState:
    """Whether a Deployment serves: rolled out and every wanted replica available."""
    if deployment is None:
        return WorkloadState(False, "DeploymentNotFound", "the Deployment does not exist yet")
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return WorkloadState(
            False, "RolloutInProgress", "the Deployment controller has not seen the latest spec yet"
        )
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            return WorkloadState(
                False, "ProgressDeadlineExceeded", str(condition.get("message", ""))
            )
    if wanted == 0:
        return WorkloadState(True, "ScaledToZero", "scaled to zero replicas", scaled_to_zero=True)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted or available < wanted:
        return WorkloadState(
            False,
            "MinimumReplicasUnavailable",
            f"{available}/{wanted} replicas available, {updated}/{wanted} updated",
        )
    return WorkloadState(True, "Ready", f"{available}/{wanted} replicas available")


def _condition(
    ctype: str,
    ok: bool,
    reason: str | None,
    message: str | None,
    *,
    previous: Mapping[str, JsonDict],
    now: str,
) -> JsonDict:
    status = "True" if ok else "False"
    before = previous.get(ctype)
    since = before.get("lastTransitionTime") if before and before.get("status") == status else None
    condition: JsonDict = {"type": ctype, "status": status, "lastTransitionTime": since or now}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed_status(
    error: ReconcileError, generation: int | None, previous: Sequence[JsonDict] = ()
) -> JsonDict:
    """The status of an InferenceService whose children cannot be built."""
    now = _now()
    before = {c["type"]: c for c in previous}
    return {
        "observedGeneration": generation,
        "conditions": [
            _condition(
                "PredictorReady", False, error.reason, error.message, previous=before, now=now
            ),
            _condition("Ready", False, error.reason, error.message, previous=before, now=now),
        ],
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {"reason": error.reason, "message": error.message},
        },
    }


def computed_status(
    plan: Plan,
    deployments: Mapping[str, Mapping[str, Any]],
    ingress_applied: bool,
    generation: int | None,
    previous: Sequence[JsonDict] = (),
) -> JsonDict:
    """Status from the plan and the live Deployments (by name)."""
    now = _now()
    before = {c["type"]: c for c in previous}
    conditions: list[JsonDict] = []
    components: dict[str, JsonDict] = {}
    all_ready = True
    predictor_state: WorkloadState | None = None
    namespace = plan.isvc.metadata.namespace
    for name, component in plan.components.items():
        states = [deployment_state(deployments.get(t.workload)) for t in component.traffic]
        ready = all(s.ready for s in states)
        first_bad = next((s for s in states if not s.ready), states[0])
        reason: str | None
        message: str | None
        if plan.stopped:
            ready, reason, message = False, "Stopped", "stopped by serving.kserve.io/stop"
        else:
            reason, message = (None, None) if ready else (first_bad.reason, first_bad.message)
        if name == "predictor":
            predictor_state = first_bad
        all_ready = all_ready and ready
        conditions.append(
            _condition(CONDITION_OF[name], ready, reason, message, previous=before, now=now)
        )
        traffic = [
            {
                "revisionName": t.revision,
                "percent": t.percent,
                "latestRevision": t.latest,
                **({"tag": "latest"} if t.latest and len(component.traffic) > 1 else {}),
                **({"tag": "prev"} if not t.latest else {}),
            }
            for t in component.traffic
        ]
        cluster_url = f"http://{component.service}.{namespace}.svc.cluster.local"
        entry: JsonDict = {
            "url": cluster_url,
            "address": {"url": cluster_url},
            "traffic": traffic,
            "latestCreatedRevision": component.latest_revision,
        }
        latest_state = deployment_state(deployments.get(component.traffic[-1].workload))
        if latest_state.ready:
            entry["latestReadyRevision"] = component.latest_revision
            if len(component.traffic) == 1:
                entry["latestRolledoutRevision"] = component.latest_revision
        if len(component.traffic) > 1:
            entry["previousRolledoutRevision"] = component.traffic[0].revision
            entry["latestRolledoutRevision"] = component.traffic[0].revision
        components[name] = entry
    ingress_reason = None if ingress_applied else "IngressNotConfigured"
    conditions.append(
        _condition(
            "IngressReady",
            ingress_applied,
            ingress_reason,
            None if ingress_applied else "the route is not applied yet",
            previous=before,
            now=now,
        )
    )
    all_ready = all_ready and ingress_applied
    if plan.stopped:
        conditions.append(
            _condition(
                "Stopped",
                True,
                "Stopped",
                "serving.kserve.io/stop is true",
                previous=before,
                now=now,
            )
        )
        ready_reason: str | None = "Stopped"
        ready_message: str | None = "stopped by serving.kserve.io/stop"
    else:
        failing = [c for c in conditions if c["status"] != "True"]
        ready_reason = failing[0].get("reason") if failing else None
        ready_message = (
            f"{failing[0]['type']} is False: {failing[0].get('message', '')}" if failing else None
        )
    conditions.append(
        _condition("Ready", all_ready, ready_reason, ready_message, previous=before, now=now)
    )

    predictor_ready = bool(predictor_state and predictor_state.ready) and not plan.stopped
    status: JsonDict = {
        "observedGeneration": generation,
        "conditions": conditions,
        "address": {"url": plan.address},
        "components": components,
        "deploymentMode": "Standard",
        "modelStatus": {
            "transitionStatus": "UpToDate" if predictor_ready else "InProgress",
            "states": {
                "activeModelState": "Loaded" if predictor_ready else "Pending",
                "targetModelState": "Loaded",
            },
            "copies": {"failedCopies": 0},
        },
    }
    if plan.url:
        status["url"] = plan.url
    if plan.runtime is not None:
        key = "clusterServingRuntimeName" if plan.runtime.cluster_scoped else "servingRuntimeName"
        status[key] = plan.runtime.name
    return status
