"""Admission: defaulting (mutating) and validation of the serving.kserve.io kinds.

Pure functions from an AdmissionReview request to its response. Validation parses the object
with ``kserve_stack_api.validation.parse`` (field-named messages), then applies the checks
that need no other object: the deployment mode, the autoscaler class and replica bounds.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from kserve_stack_api.inferenceservice import FRAMEWORKS, InferenceService
from kserve_stack_api.validation import InvalidManifestError, parse

from kserve_stack_controller.builders.autoscaling import scaling_of
from kserve_stack_controller.builders.defaulting import default_inference_service
from kserve_stack_controller.builders.inferenceservice import autoscaler_class, deployment_mode
from kserve_stack_controller.config import ControllerConfig
from kserve_stack_controller.errors import ReconcileError

JsonDict = dict[str, Any]


def problems_of(obj: Mapping[str, Any], config: ControllerConfig) -> list[str]:
    """Every reason to refuse ``obj``, each naming its field; empty when it is fine."""
    manifest = {k: v for k, v in obj.items() if k != "status"}
    try:
        model = parse(manifest)
    except InvalidManifestError as err:
        return list(err.problems)
    if not isinstance(model, InferenceService):
        return []
    problems: list[str] = []
    try:
        deployment_mode(model, config)
    except ReconcileError as err:
        problems.append(f"metadata.annotations[serving.kserve.io/deploymentMode]: {err.message}")
    autoscaler = autoscaler_class(model, config)
    for name in ("predictor", "transformer", "explainer"):
        component = getattr(model.spec, name)
        if component is None:
            continue
        try:
            scaling_of(component, autoscaler)
        except ReconcileError as err:
            problems.append(err.message.replace("spec.predictor.", f"spec.{name}."))
    return problems


def default_patch(obj: Mapping[str, Any], config: ControllerConfig) -> list[JsonDict]:
    """A JSON patch that defaults an InferenceService (empty when nothing changes)."""
    if obj.get("kind") != "InferenceService":
        return []
    manifest = _reapplied_legacy_block(obj)
    try:
        model = parse({k: v for k, v in manifest.items() if k != "status"})
    except InvalidManifestError:
        return []  # the validating webhook explains what is wrong
    assert isinstance(model, InferenceService)
    defaulted = default_inference_service(model, config).to_wire()["spec"]
    if manifest is not obj:
        return [{"op": "replace", "path": "/spec", "value": defaulted}]
    if defaulted == obj.get("spec"):
        return []
    return [{"op": "replace", "path": "/spec", "value": defaulted}]


def _reapplied_legacy_block(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """A legacy framework block beside ``model``: the manifest was applied again over its
    defaulted self (server-side apply keeps ``model``); the block is the user's intent."""
    predictor = (obj.get("spec") or {}).get("predictor")
    if not isinstance(predictor, Mapping) or "model" not in predictor:
        return obj
    blocks = [name for name in FRAMEWORKS if name in predictor]
    if len(blocks) != 1:
        return obj
    spec = {**obj["spec"], "predictor": {k: v for k, v in predictor.items() if k != "model"}}
    return {**obj, "spec": spec}


def _response(
    uid: str, allowed: bool, message: str | None = None, patch: list[JsonDict] | None = None
) -> JsonDict:
    response: JsonDict = {"uid": uid, "allowed": allowed}
    if message is not None:
        response["status"] = {
            "code": 422 if not allowed else 200,
            "reason": "Invalid",
            "message": message,
        }
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def review(body: Mapping[str, Any], config: ControllerConfig, mutate: bool) -> JsonDict:
    """The AdmissionReview answer to ``body`` (mutating or validating)."""
    request = body.get("request")
    if not isinstance(request, Mapping) or "uid" not in request:
        raise ValueError("not an AdmissionReview: request.uid is missing")
    uid = str(request["uid"])
    obj = request.get("object")
    if request.get("operation") == "DELETE" or not isinstance(obj, Mapping):
        return _response(uid, True)
    if mutate:
        return _response(uid, True, patch=default_patch(obj, config))
    problems = problems_of(obj, config)
    if problems:
        kind = obj.get("kind", "object")
        name = (obj.get("metadata") or {}).get("name", "")
        return _response(uid, False, f"{kind} {name} is invalid: " + "; ".join(problems))
    return _response(uid, True)


ConfigSource = Callable[[], ControllerConfig]
