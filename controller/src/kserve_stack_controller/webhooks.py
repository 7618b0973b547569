"""The webhook configurations of the serving.kserve.io kinds, written once: registered by
URL by a controller run outside the cluster (``--webhook-url``), and printed by Service for
the installers (``python -m kserve_stack_controller.webhooks``, kept in
kustomize/controller/webhooks.yaml by ``make controller-generate``), whose caBundle the
controller fills in (``--webhook-secret``)."""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from kserve_stack_controller.state import Settings

JsonDict = dict[str, Any]


def webhook_configurations(
    settings: Settings, ca_bundle: bytes | None = None, service_port: int = 443
) -> list[JsonDict]:
    """The Mutating and Validating configurations: by URL when ``settings.webhook_url`` is
    set, else by the Service ``settings.webhook_namespace/webhook_service``."""
    scope: JsonDict = {}
    if settings.namespaces:
        scope["namespaceSelector"] = {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": sorted(settings.namespaces),
                }
            ]
        }

    def client_config(path: str) -> JsonDict:
        config: JsonDict
        if settings.webhook_url:
            config = {"url": f"{settings.webhook_url.rstrip('/')}/{path}"}
        else:
            config = {
                "service": {
                    "namespace": settings.webhook_namespace,
                    "name": settings.webhook_service,
                    "path": f"/{path}",
                    "port": service_port,
                }
            }
        if ca_bundle is not None:
            config["caBundle"] = base64.b64encode(ca_bundle).decode()
        return config

    def hook(
        path: str, name: str, resources: list[str], versions: list[str], failure: str = "Fail"
    ) -> JsonDict:
        return {
            "name": name,
            "clientConfig": client_config(path),
            "rules": [
                {
                    "apiGroups": ["serving.kserve.io"],
                    "apiVersions": versions,
                    "operations": ["CREATE", "UPDATE"],
                    "resources": resources,
                }
            ],
            "failurePolicy": failure,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
            **scope,
        }

    kinds = ["inferenceservices", "inferencegraphs", "llminferenceservices",
             "llminferenceserviceconfigs"]  # fmt: skip
    # Runtimes are checked too (unknown fields refused, not pruned), but a controller that is
    # not up yet must not block them: the chart installs the built-in ones in the release
    # that registers the webhook, and their schema's CEL rules hold every invariant anyway.
    runtimes = ["servingruntimes"]
    # The API server ignores namespaceSelector for cluster-scoped objects: a controller
    # confined to some namespaces must not gate every ClusterServingRuntime of the cluster.
    if not settings.namespaces:
        runtimes.append("clusterservingruntimes")
    name = settings.webhook_config_name
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                hook(
                    "mutate",
                    "inferenceservice.defaulter.serving.kserve.io",
                    ["inferenceservices"],
                    ["v1beta1"],
                )
            ],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                hook("validate", "validator.serving.kserve.io", kinds, ["*"]),
                hook("validate", "runtime.validator.serving.kserve.io", runtimes, ["*"], "Ignore"),
            ],
        },
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kserve_stack_controller.webhooks",
        description="Print the webhook configurations, by Service, as YAML (caBundle left "
        "out: the controller writes it with --webhook-secret).",
    )
    parser.add_argument("--name", default=Settings.webhook_config_name,
                        help="Name of both configurations (default: %(default)s).")  # fmt: skip
    parser.add_argument("--service", default=Settings.webhook_service,
                        help="The webhook Service (default: %(default)s).")  # fmt: skip
    parser.add_argument("--namespace", default=Settings.webhook_namespace,
                        help="Its namespace (default: %(default)s).")  # fmt: skip
    args = parser.parse_args(argv)
    settings = Settings(
        webhook_config_name=args.name,
        webhook_service=args.service,
        webhook_namespace=args.namespace,
    )
    header = "# Generated by `make controller-generate` (kserve_stack_controller.webhooks).\n"
    sys.stdout.write(header + yaml.safe_dump_all(webhook_configurations(settings), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
