"""The ConfigMap inferenceservice-config: defaults, JSON and YAML keys, clear errors."""

from __future__ import annotations

import pytest
from kserve_stack_controller.config import (
    ConfigError,
    ControllerConfig,
    from_configmap_data,
    to_configmap_data,
)


def test_empty_is_defaults_and_round_trips() -> None:
    assert from_configmap_data(None) == ControllerConfig()
    assert from_configmap_data(to_configmap_data(ControllerConfig())) == ControllerConfig()


def test_json_and_yaml_keys_and_unknown_keys_ignored() -> None:
    config = from_configmap_data({
        "ingress": '{"ingressDomain": "svc.example.org"}',
        "storageInitializer": "image: si:9\ncacheSize: 1Gi\n",
        "explainers": '{"art": {}}',  # KServe's key: not ours, left alone
    })  # fmt: skip
    assert config.ingress.ingress_domain == "svc.example.org"
    assert config.storage_initializer.image == "si:9"
    assert config.storage_initializer.cache_size == "1Gi"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"ingress": '{"ingressDomain": 3, "bogus": 1}'}, "ingress.bogus"),
        ({"deploy": '{"defaultDeploymentMode": "Serverless"}'}, "deploy.defaultDeploymentMode"),
        ({"autoscaler": "[1, 2]"}, "must hold an object"),
        ({"ingress": "{: ["}, "neither JSON nor YAML"),
    ],
    ids=["unknown-field", "serverless", "not-object", "garbage"],
)
def test_errors_name_the_key(data: dict[str, str], text: str) -> None:
    with pytest.raises(ConfigError, match="inferenceservice-config") as raised:
        from_configmap_data(data)
    assert text in str(raised.value)
