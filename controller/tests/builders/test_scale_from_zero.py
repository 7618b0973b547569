"""Scale from zero: a KEDA component with ``minReplicas: 0`` is routed through the activator
and its ScaledObject is woken by the activator's held requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from controller_factories import isvc
from kserve_stack_controller.builders.inferenceservice import Inputs, LiveWorkload, Plan, build
from kserve_stack_controller.builtin_runtimes import builtin_runtimes
from kserve_stack_controller.config import ControllerConfig, from_configmap_data

SKLEARN = {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}
KEDA = {"serving.kserve.io/autoscalerClass": "keda"}
PENDING = 'sum(kserve_stack_activator_pending_requests{namespace="ns1",service="z-predictor"})'
ACTIVATOR_TRIGGER = {
    "type": "prometheus",
    "name": "activator-pending-requests",
    "metadata": {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": PENDING,
        "threshold": "1",
        "activationThreshold": "0",
    },
}


def _headers(target: str, hold: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [
                    {"name": "x-kserve-stack-target", "value": target},
                    {"name": "x-kserve-stack-hold-timeout", "value": hold},
                ]
            },
        }
    ]


VIA_ACTIVATOR = {
    "group": "",
    "kind": "Service",
    "name": "kserve-stack-activator",
    "namespace": "kserve",
    "port": 80,
    "weight": 100,
    "filters": _headers("ns1/z-predictor", "300"),
}
DIRECT = {"group": "", "kind": "Service", "name": "z-predictor", "port": 80, "weight": 100}
GRANT = {
    "apiVersion": "gateway.networking.k8s.io/v1beta1",
    "kind": "ReferenceGrant",
    "metadata": {
        "name": "kserve-stack-activator-from-ns1",
        "namespace": "kserve",
        "labels": {"app.kubernetes.io/managed-by": "kserve-stack-controller"},
    },
    "spec": {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "ns1"}],
        "to": [{"group": "", "kind": "Service", "name": "kserve-stack-activator"}],
    },
}


def plan_of(fields: dict[str, Any], annotations: dict[str, str] | None = None,
            config: ControllerConfig | None = None, **spec: Any) -> Plan:  # fmt: skip
    service = isvc({"model": SKLEARN, **fields}, name="z", annotations=annotations, **spec)
    return build(Inputs(service, config or ControllerConfig(), [], builtin_runtimes(), {}))


def objects(plan: Plan) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in plan.objects}


def _config(**activator: Any) -> ControllerConfig:
    return from_configmap_data({"activator": json.dumps(activator)})


# (id, predictor fields, annotations, config, route backendRefs of rule 0, activator trigger?)
CASES = [
    ("keda-zero", {"minReplicas": 0}, KEDA, None, [VIA_ACTIVATOR], True),
    ("keda-zero-concurrency", {"minReplicas": 0, "scaleMetric": "concurrency"}, KEDA, None,
     [VIA_ACTIVATOR], True),
    ("keda-one", {"minReplicas": 1}, KEDA, None, [DIRECT], False),
    ("keda-zero-activator-disabled", {"minReplicas": 0}, KEDA, _config(enabled=False),
     [DIRECT], False),
    ("keda-zero-activator-same-namespace", {"minReplicas": 0}, KEDA,
     _config(namespace="ns1", serviceName="act", port=8080, holdTimeoutSeconds=45),
     [{"group": "", "kind": "Service", "name": "act", "port": 8080, "weight": 100,
       "filters": _headers("ns1/z-predictor", "45")}], True),
    ("stopped", {"minReplicas": 0}, {**KEDA, "serving.kserve.io/stop": "true"}, None,
     [DIRECT], False),
    ("hpa", {}, {}, None, [DIRECT], False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "annotations", "config", "refs", "trigger"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_route_and_trigger(fields, annotations, config, refs, trigger) -> None:  # type: ignore[no-untyped-def]
    plan = plan_of(fields, annotations, config)
    objs = objects(plan)
    assert objs["HTTPRoute/z"]["spec"]["rules"][0]["backendRefs"] == refs
    scaled = objs.get("ScaledObject/z-predictor")
    triggers = scaled["spec"]["triggers"] if scaled else []
    named = [t for t in triggers if t.get("name") == "activator-pending-requests"]
    assert len(named) == (1 if trigger else 0)
    if trigger and config is None:
        assert named == [ACTIVATOR_TRIGGER]
    if trigger:
        assert scaled is not None and scaled["spec"]["minReplicaCount"] == 0
        assert any("routed through the activator" in d for d in plan.decisions)
        assert plan.components["predictor"].behind_activator
    else:
        assert not plan.components["predictor"].behind_activator
    # A route that names the activator in another namespace comes with its ReferenceGrant.
    across = any(ref.get("namespace") for ref in refs)
    assert plan.shared == ([GRANT] if across else [])


def test_external_metrics_keep_their_triggers_and_add_the_activator() -> None:
    external = {"type": "External", "external": {
        "metric": {"backend": "prometheus", "query": "sum(q)"},
        "target": {"type": "Value", "value": "7"}}}  # fmt: skip
    plan = plan_of({"minReplicas": 0, "autoScaling": {"metrics": [external]}}, KEDA)
    triggers = objects(plan)["ScaledObject/z-predictor"]["spec"]["triggers"]
    assert [t["metadata"]["query"] for t in triggers] == ["sum(q)", PENDING]


@pytest.mark.parametrize(("hold", "expected"), [(None, "330s"), (60, "90s")])
def test_rule_timeout_covers_the_hold(hold: int | None, expected: str) -> None:
    config = _config(holdTimeoutSeconds=hold) if hold else None
    route = objects(plan_of({"minReplicas": 0, "timeout": 30}, KEDA, config))["HTTPRoute/z"]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": expected}
    direct = objects(plan_of({"minReplicas": 1, "timeout": 30}, KEDA))["HTTPRoute/z"]
    assert direct["spec"]["rules"][0]["timeouts"] == {"request": "30s"}


def test_canary_stable_through_activator_canary_direct() -> None:
    first = plan_of({"minReplicas": 0}, KEDA)
    live = {"predictor": LiveWorkload(first.components["predictor"].latest_revision, 0)}
    service = isvc({"model": {**SKLEARN, "storageUri": "gs://bucket/v2"}, "minReplicas": 0,
                    "canaryTrafficPercent": 10}, name="z", annotations=KEDA)  # fmt: skip
    plan = build(Inputs(service, ControllerConfig(), [], builtin_runtimes(), live))
    refs = objects(plan)["HTTPRoute/z"]["spec"]["rules"][0]["backendRefs"]
    assert refs == [
        {**VIA_ACTIVATOR, "weight": 90},
        {**DIRECT, "name": "z-predictor-canary", "weight": 10},
    ]


def test_explainer_at_zero_is_held_too() -> None:
    explainer = {"containers": [{"name": "kserve-container", "image": "x"}], "minReplicas": 0}
    plan = plan_of({"minReplicas": 0}, KEDA, explainer=explainer)
    rules = objects(plan)["HTTPRoute/z"]["spec"]["rules"]
    assert rules[0]["backendRefs"][0]["filters"] == _headers("ns1/z-explainer", "300")
    assert rules[1]["backendRefs"] == [VIA_ACTIVATOR]
    assert plan.shared == [GRANT]


def test_ingress_cannot_hold_and_says_so() -> None:
    ingress_mode = from_configmap_data({"ingress": '{"enableGatewayApi": false}'})
    plan = plan_of({"minReplicas": 0}, KEDA, ingress_mode)
    backend = objects(plan)["Ingress/z"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "z-predictor"
    assert any("not held" in d for d in plan.decisions)


def test_config_defaults_and_bad_values() -> None:
    config = ControllerConfig()
    assert (config.activator.service_name, config.activator.namespace) == (
        "kserve-stack-activator", "kserve")  # fmt: skip
    assert config.activator.hold_timeout_seconds == 300
    with pytest.raises(ValueError, match=r"activator\.holdTimeoutSeconds"):
        _config(holdTimeoutSeconds=0)
    with pytest.raises(ValueError, match=r"activator\.image"):
        _config(image="x")  # the activator's image is in its Deployment, not here
