"""The chart installs the controller, its webhooks and the activator from the same manifests
as kustomize/controller: moved into the release namespace, images and switches from the
values, inferenceservice-config from ``config``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE = REPO / "kustomize" / "controller"
NS = "kserve-stack"  # conftest.RELEASE_NAMESPACE
Render = Any  # conftest.Render
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}  # fmt: skip


def _by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = _by_key(docs)["Deployment", name]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_same_objects_as_kustomize_in_the_release_namespace(render: Render) -> None:
    rendered = _by_key([d for d in render() if d["kind"] != "CustomResourceDefinition"])
    sources = [KUSTOMIZE / f for f in ("rbac.yaml", "deployment.yaml", "activator.yaml",
                                      "webhooks.yaml")]  # fmt: skip
    shipped = _by_key([d for p in sources for d in yaml.safe_load_all(p.read_text()) if d])
    assert set(rendered) == set(shipped) | {("ConfigMap", "inferenceservice-config")}
    for key, obj in rendered.items():
        meta = obj["metadata"]
        assert meta.get("namespace") == (None if key[0] in CLUSTER_SCOPED else NS), key
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", key
        for subject in obj.get("subjects") or []:
            assert subject["namespace"] == NS, key
        for hook in obj.get("webhooks") or []:
            assert hook["clientConfig"]["service"]["namespace"] == NS, key
        if key in shipped and key[0] not in ("Deployment", "ConfigMap"):
            # Beyond metadata and the namespace they name, the objects are kustomize's.
            expected = copy.deepcopy(shipped[key])
            for subject in expected.get("subjects") or []:
                subject["namespace"] = NS
            for hook in expected.get("webhooks") or []:
                hook["clientConfig"]["service"]["namespace"] = NS
            assert {k: v for k, v in obj.items() if k != "metadata"} == {
                k: v for k, v in expected.items() if k != "metadata"
            }, f"{key} differs from kustomize/controller"


def test_images_replicas_and_runtimes_from_values(render: Render) -> None:
    docs = render("controller.image=reg.example/ctl:2", "activator.replicas=3",
                  "runtimes.image=reg.example/rt:2", "imagePullPolicy=Always")  # fmt: skip
    controller = _container(docs, "kserve-stack-controller")
    assert controller["image"] == "reg.example/ctl:2"
    assert controller["imagePullPolicy"] == "Always"
    assert "--install-builtin-runtimes" in controller["args"]
    assert "--runtime-image=reg.example/rt:2" in controller["args"]
    assert "--webhook-secret=kserve-stack-webhook-tls" in controller["args"]
    assert _by_key(docs)["Deployment", "kserve-stack-activator"]["spec"]["replicas"] == 3
    off = _container(render("runtimes.enabled=false"), "kserve-stack-controller")
    assert "--install-builtin-runtimes" not in off["args"]


def test_components_can_be_left_out(render: Render) -> None:
    kinds = {k for k in _by_key(render("controller.enabled=false", "activator.enabled=false"))}
    assert {k for k in kinds if k[0] != "CustomResourceDefinition"} == set()
    no_activator = _by_key(render("activator.enabled=false"))
    assert ("Deployment", "kserve-stack-activator") not in no_activator
    config = no_activator["ConfigMap", "inferenceservice-config"]["data"]
    assert json.loads(config["activator"]) == {"namespace": NS, "enabled": False}


def test_config_sections_are_json(render: Render) -> None:
    docs = render("config.ingress.ingressDomain=models.example.org",
                  "config.activator.namespace=elsewhere")  # fmt: skip
    data = _by_key(docs)["ConfigMap", "inferenceservice-config"]["data"]
    assert json.loads(data["ingress"]) == {"ingressDomain": "models.example.org"}
    assert json.loads(data["activator"]) == {"namespace": "elsewhere"}
