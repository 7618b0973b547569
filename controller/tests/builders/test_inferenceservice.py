"""The whole build: Deployment, Service, storage, autoscalers, routes, canary, stop, modes."""

from __future__ import annotations

from typing import Any

import pytest
from controller_factories import cluster_runtime, isvc, serving_runtime
from kserve_stack_api.inferenceservice import InferenceService
from kserve_stack_controller.builders.inferenceservice import Inputs, LiveWorkload, Plan, build
from kserve_stack_controller.builtin_runtimes import builtin_runtimes
from kserve_stack_controller.config import ControllerConfig, from_configmap_data
from kserve_stack_controller.errors import (
    InvalidSpecError,
    NoSupportingRuntimeError,
    UnsupportedDeploymentModeError,
)

SKLEARN = {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://bucket/model"}


def plan_of(service: InferenceService, config: ControllerConfig | None = None,
            live: dict[str, LiveWorkload] | None = None, ns_runtimes: list[Any] | None = None
            ) -> Plan:  # fmt: skip
    return build(Inputs(service, config or ControllerConfig(), ns_runtimes or [],
                        builtin_runtimes(), live or {}))  # fmt: skip


def objects(plan: Plan) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in plan.objects}


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "kserve-container")


def test_sklearn_deployment_from_builtin_runtime() -> None:
    plan = plan_of(isvc({"model": SKLEARN}, name="iris"))
    objs = objects(plan)
    assert set(objs) == {"Deployment/iris-predictor", "Service/iris-predictor",
                         "HorizontalPodAutoscaler/iris-predictor", "HTTPRoute/iris"}  # fmt: skip
    dep = objs["Deployment/iris-predictor"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["serving.kserve.io/inferenceservice"] == "iris"
    assert labels["component"] == "predictor"
    assert labels["app"] == "isvc.iris-predictor"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "isvc.iris-predictor"}
    main = main_container(dep)
    assert main["image"] == "kserve-stack/runtimes:0.1.0"
    assert main["args"][:2] == ["sklearn", "--model_name=iris"]  # {{.Name}} substituted
    assert {"name": "kserve-provision-location", "mountPath": "/mnt/models",
            "readOnly": True} in main["volumeMounts"]  # fmt: skip
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["name"] == "storage-initializer"
    assert init["args"] == ["gs://bucket/model", "/mnt/models"]
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {"name": "kserve-provision-location", "emptyDir": {}} in volumes
    assert "replicas" not in dep["spec"]  # the HPA owns them
    assert plan.runtime is not None and plan.runtime.name == "kserve-sklearnserver"
    svc = objs["Service/iris-predictor"]
    assert svc["spec"]["ports"][0] == {"name": "http", "port": 80, "targetPort": 8080,
                                       "protocol": "TCP"}  # fmt: skip
    assert plan.url == "http://iris-ns1.example.com"
    assert plan.address == "http://iris-predictor.ns1.svc.cluster.local"


def test_model_fields_merge_over_runtime() -> None:
    model = {**SKLEARN, "args": ["--workers=2"], "runtimeVersion": "9.9",
             "env": [{"name": "A", "value": "{{.Namespace}}"}],
             "resources": {"limits": {"memory": "4Gi"}}}  # fmt: skip
    dep = objects(plan_of(isvc({"model": model}, name="m")))["Deployment/m-predictor"]
    main = main_container(dep)
    assert main["args"][-1] == "--workers=2" and main["args"][0] == "sklearn"
    assert main["image"] == "kserve-stack/runtimes:9.9"
    assert main["resources"]["limits"]["memory"] == "4Gi"
    assert main["resources"]["requests"]["cpu"] == "1"
    assert {"name": "A", "value": "{{.Namespace}}"} in main["env"]  # model env is not a template


def test_runtime_env_template_and_unknown_field() -> None:
    rt = serving_runtime("mine", [{"name": "sklearn", "autoSelect": True}])
    rt.spec.containers[0].args = ["--ns={{ .Namespace }}", "--label={{.Labels.team}}"]
    model = {**SKLEARN, "runtime": "mine"}
    with pytest.raises(InvalidSpecError, match="label 'team'"):
        plan_of(isvc({"model": model}), ns_runtimes=[rt])
    rt.spec.containers[0].args = ["--ns={{ .Namespace }}"]
    dep = objects(plan_of(isvc({"model": model}), ns_runtimes=[rt]))["Deployment/demo-predictor"]
    assert main_container(dep)["args"] == ["--ns=ns1"]
    rt.spec.containers[0].args = ["{{ .Bogus }}"]
    with pytest.raises(InvalidSpecError, match=r"unknown template field \{\{ \.Bogus \}\}"):
        plan_of(isvc({"model": model}), ns_runtimes=[rt])


def test_pvc_is_mounted_read_only() -> None:
    model = {**SKLEARN, "storageUri": "pvc://claim/models/iris"}
    dep = objects(plan_of(isvc({"model": model}, name="p")))["Deployment/p-predictor"]
    pod = dep["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert {"name": "kserve-provision-location", "persistentVolumeClaim": {
        "claimName": "claim", "readOnly": True}} in pod["volumes"]  # fmt: skip
    mount = main_container(dep)["volumeMounts"][-1]
    assert mount == {"name": "kserve-provision-location", "mountPath": "/mnt/models",
                     "readOnly": True, "subPath": "models/iris"}  # fmt: skip


def test_storage_initializer_config_and_cache_size() -> None:
    config = from_configmap_data({"storageInitializer": '{"image": "si:2", "cacheSize": "5Gi"}'})
    dep = objects(plan_of(isvc({"model": SKLEARN}, name="c"), config))["Deployment/c-predictor"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == "si:2"
    assert {"name": "kserve-provision-location", "emptyDir": {"sizeLimit": "5Gi"}} in pod["volumes"]


AUTOSCALER_CASES = [
    ("hpa-cpu", "hpa", {"minReplicas": 2, "maxReplicas": 5, "scaleTarget": 60},
     "HorizontalPodAutoscaler", lambda o: o["spec"]["metrics"][0]["resource"] == {
         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}
     and o["spec"]["minReplicas"] == 2 and o["spec"]["maxReplicas"] == 5),
    ("hpa-memory", "hpa", {"scaleMetric": "memory"}, "HorizontalPodAutoscaler",
     lambda o: o["spec"]["metrics"][0]["resource"]["name"] == "memory"),
    ("keda-zero", "keda", {"minReplicas": 0, "maxReplicas": 3}, "ScaledObject",
     lambda o: o["spec"]["minReplicaCount"] == 0 and
     any(t["type"] == "prometheus" for t in o["spec"]["triggers"])),
    ("keda-concurrency", "keda", {"scaleMetric": "concurrency", "scaleTarget": 4}, "ScaledObject",
     lambda o: o["spec"]["triggers"][0]["metadata"]["threshold"] == "4"
     and "kserve_stack_inflight_requests" in o["spec"]["triggers"][0]["metadata"]["query"]),
    ("keda-prometheus-metrics", "keda", {"autoScaling": {"metrics": [{"type": "External",
     "external": {"metric": {"backend": "prometheus", "query": "sum(q)"},
                  "target": {"type": "Value", "value": "7"}}}]}}, "ScaledObject",
     lambda o: o["spec"]["triggers"] == [{"type": "prometheus", "metadata": {
         "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
         "query": "sum(q)", "threshold": "7"}}]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("klass", "fields", "kind", "check"),
    [c[1:] for c in AUTOSCALER_CASES],
    ids=[c[0] for c in AUTOSCALER_CASES],
)
def test_autoscalers(klass, fields, kind, check) -> None:  # type: ignore[no-untyped-def]
    service = isvc({"model": SKLEARN, **fields}, name="a",
                   annotations={"serving.kserve.io/autoscalerClass": klass})  # fmt: skip
    objs = objects(plan_of(service))
    assert check(objs[f"{kind}/a-predictor"])
    other = {"HorizontalPodAutoscaler", "ScaledObject"} - {kind}
    assert not any(key.split("/")[0] in other for key in objs)


@pytest.mark.parametrize("klass", ["none", "external"])
def test_no_autoscaler(klass: str) -> None:
    service = isvc({"model": SKLEARN, "minReplicas": 3}, name="a",
                   annotations={"serving.kserve.io/autoscalerClass": klass})  # fmt: skip
    objs = objects(plan_of(service))
    assert not any(k.startswith(("HorizontalPodAutoscaler", "ScaledObject")) for k in objs)
    replicas = objs["Deployment/a-predictor"]["spec"].get("replicas")
    assert replicas == (3 if klass == "none" else None)


INVALID = [
    ("serverless", {"serving.kserve.io/deploymentMode": "Serverless"}, {},
     UnsupportedDeploymentModeError, "Standard"),
    ("modelmesh", {"serving.kserve.io/deploymentMode": "ModelMesh"}, {},
     UnsupportedDeploymentModeError, "RawDeployment"),
    ("bad-autoscaler", {"serving.kserve.io/autoscalerClass": "kpa"}, {}, InvalidSpecError,
     "autoscalerClass"),
    ("hpa-zero", {"serving.kserve.io/autoscalerClass": "hpa"}, {"minReplicas": 0},
     InvalidSpecError, "minReplicas"),
    ("hpa-rps", {}, {"scaleMetric": "rps"}, InvalidSpecError, "scaleMetric: rps needs"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("annotations", "fields", "error", "text"),
    [c[1:] for c in INVALID],
    ids=[c[0] for c in INVALID],
)
def test_refused(annotations, fields, error, text) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=text):
        plan_of(isvc({"model": SKLEARN, **fields}, annotations=annotations))


def test_raw_deployment_mode_accepted() -> None:
    service = isvc({"model": SKLEARN}, annotations={
        "serving.kserve.io/deploymentMode": "RawDeployment"})  # fmt: skip
    assert plan_of(service).components["predictor"].service == "demo-predictor"


def test_no_supporting_runtime_reason() -> None:
    with pytest.raises(NoSupportingRuntimeError) as raised:
        plan_of(isvc({"model": {"modelFormat": {"name": "tensorflow"}}}))
    assert raised.value.reason == "NoSupportingRuntime"


def test_http_route_and_path_template() -> None:
    config = from_configmap_data({"ingress": """
kserveIngressGateway: gw-ns/my-gw
ingressDomain: models.local
pathTemplate: /serving/{{ .Namespace }}/{{ .Name }}
"""})  # fmt: skip
    plan = plan_of(isvc({"model": SKLEARN, "timeout": 30}, name="r"), config)
    route = objects(plan)["HTTPRoute/r"]
    assert route["spec"]["parentRefs"][0]["name"] == "my-gw"
    assert route["spec"]["parentRefs"][0]["namespace"] == "gw-ns"
    assert route["spec"]["hostnames"] == ["r-ns1.models.local", "models.local"]
    rules = route["spec"]["rules"]
    assert rules[0]["backendRefs"][0]["name"] == "r-predictor"
    assert rules[0]["timeouts"] == {"request": "30s"}
    assert rules[1]["matches"][0]["path"]["value"] == "/serving/ns1/r"
    assert plan.url == "http://r-ns1.models.local"


def test_ingress_mode() -> None:
    config = from_configmap_data({"ingress": '{"enableGatewayApi": false}'})
    objs = objects(plan_of(isvc({"model": SKLEARN}, name="i"), config))
    assert "HTTPRoute/i" not in objs
    rule = objs["Ingress/i"]["spec"]["rules"][0]
    assert rule["host"] == "i-ns1.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "i-predictor"


def test_transformer_gets_predictor_host_and_is_the_entry() -> None:
    plan = plan_of(
        isvc(
            {"model": SKLEARN},
            name="t",
            transformer={"containers": [{"name": "kserve-container", "image": "t:1"}]},
        )
    )
    objs = objects(plan)
    args = objs["Deployment/t-transformer"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--predictor_host") + 1] == "t-predictor.ns1"
    assert objs["HTTPRoute/t"]["spec"]["rules"][0]["backendRefs"][0]["name"] == "t-transformer"
    assert plan.address == "http://t-transformer.ns1.svc.cluster.local"


def test_explainer_rule_and_art_refused() -> None:
    plan = plan_of(
        isvc(
            {"model": SKLEARN},
            name="e",
            explainer={"containers": [{"name": "kserve-container", "image": "x"}]},
        )
    )
    rules = objects(plan)["HTTPRoute/e"]["spec"]["rules"]
    assert rules[0]["backendRefs"][0]["name"] == "e-explainer"
    with pytest.raises(InvalidSpecError, match=r"spec\.explainer\.art"):
        plan_of(isvc({"model": SKLEARN}, explainer={"art": {"type": "SquareAttack"}}))


def test_canary_keeps_stable_revision_and_weights_route() -> None:
    first = plan_of(isvc({"model": SKLEARN}, name="c"))
    stable_rev = first.components["predictor"].latest_revision
    live = {"predictor": LiveWorkload(stable_rev, 1, True)}
    changed = isvc({"model": {**SKLEARN, "storageUri": "gs://bucket/v2"},
                    "canaryTrafficPercent": 10}, name="c")  # fmt: skip
    plan = plan_of(changed, live=live)
    objs = objects(plan)
    assert ("Deployment", "c-predictor") in plan.keep
    assert "Deployment/c-predictor" not in objs  # the stable one is left as it runs
    canary = objs["Deployment/c-predictor-canary"]
    assert canary["spec"]["template"]["spec"]["initContainers"][0]["args"][0] == "gs://bucket/v2"
    refs = objs["HTTPRoute/c"]["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("c-predictor", 90),
                                                         ("c-predictor-canary", 10)]  # fmt: skip
    traffic = plan.components["predictor"].traffic
    assert [(t.revision, t.percent) for t in traffic] == [
        (stable_rev, 90), (plan.components["predictor"].latest_revision, 10)]  # fmt: skip
    # Promotion: without canaryTrafficPercent the stable Deployment takes the new revision.
    promoted = plan_of(isvc({"model": {**SKLEARN, "storageUri": "gs://bucket/v2"}}, name="c"),
                       live=live)  # fmt: skip
    pobjs = objects(promoted)
    assert "Deployment/c-predictor-canary" not in pobjs and not promoted.keep
    assert pobjs["HTTPRoute/c"]["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "c-predictor", "port": 80, "weight": 100}
    ]


def test_canary_without_previous_revision_takes_everything() -> None:
    plan = plan_of(isvc({"model": SKLEARN, "canaryTrafficPercent": 20}, name="c"))
    assert "Deployment/c-predictor" in objects(plan)
    assert [t.percent for t in plan.components["predictor"].traffic] == [100]


def test_revision_is_stable_and_tracks_the_pod() -> None:
    a = plan_of(isvc({"model": SKLEARN})).components["predictor"].latest_revision
    b = plan_of(isvc({"model": SKLEARN})).components["predictor"].latest_revision
    c = plan_of(isvc({"model": {**SKLEARN, "storageUri": "gs://other"}}))
    assert a == b != c.components["predictor"].latest_revision


def test_stop_scales_to_zero_without_autoscaler() -> None:
    plan = plan_of(isvc({"model": SKLEARN}, name="s",
                        annotations={"serving.kserve.io/stop": "true"}))  # fmt: skip
    objs = objects(plan)
    assert objs["Deployment/s-predictor"]["spec"]["replicas"] == 0
    assert not any(k.startswith("HorizontalPodAutoscaler") for k in objs)
    assert plan.stopped
    # Resumed: the Deployment at 0 is woken to minReplicas, then the HPA takes over.
    resumed = plan_of(isvc({"model": SKLEARN}, name="s"),
                      live={"predictor": LiveWorkload("x", 0)})  # fmt: skip
    assert objects(resumed)["Deployment/s-predictor"]["spec"]["replicas"] == 1


def test_custom_container_predictor() -> None:
    plan = plan_of(
        isvc(
            {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "me:1",
                        "ports": [{"containerPort": 9000}],
                    }
                ]
            },
            name="cu",
        )
    )
    objs = objects(plan)
    assert objs["Service/cu-predictor"]["spec"]["ports"][0]["targetPort"] == 9000
    assert plan.runtime is None


def test_cluster_runtime_named_in_status_plan() -> None:
    plan = plan_of(
        isvc({"model": {"modelFormat": {"name": "xgboost"}, "runtime": "kserve-xgbserver"}})
    )
    assert plan.runtime is not None and plan.runtime.cluster_scoped


def test_custom_cluster_runtime_selected_over_builtin_by_priority() -> None:
    mine = cluster_runtime("mine", [{"name": "sklearn", "autoSelect": True, "priority": 9}])
    plan = build(Inputs(isvc({"model": SKLEARN}), ControllerConfig(), [],
                        [*builtin_runtimes(), mine]))  # fmt: skip
    assert plan.runtime is not None and plan.runtime.name == "mine"
