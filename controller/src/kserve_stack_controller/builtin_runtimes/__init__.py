"""The built-in ClusterServingRuntimes (KServe's names on the kserve-stack image).

The YAML files here are copies of ``charts/kserve-stack/files/runtimes/`` (the single
source, installed by the chart); ``make controller-generate`` refreshes them and
``make verify`` fails when they drift.
"""

from __future__ import annotations

from importlib import resources

import yaml
from kserve_stack_api.servingruntime import ClusterServingRuntime


def builtin_runtimes() -> list[ClusterServingRuntime]:
    """Every built-in runtime, by name."""
    found = []
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            found.append(ClusterServingRuntime.model_validate(yaml.safe_load(entry.read_text())))
    return found
