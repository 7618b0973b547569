"""Prometheus metrics of the model server.

* ``kserve_stack_requests_total{model,status,protocol}``: finished inference requests.
* ``request_preprocess_seconds`` / ``request_predict_seconds`` / ``request_postprocess_seconds``
  / ``request_explain_seconds`` ``{model_name}``: latency of each lifecycle stage (the names
  KServe's model server uses, so its dashboards work unchanged).
* ``kserve_stack_inflight_requests{protocol}``: requests being served right now.

With ``--workers N`` the server sets ``PROMETHEUS_MULTIPROC_DIR`` so every worker's figures are
summed on ``/metrics`` whichever worker answers it.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # type: ignore[no-untyped-call]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's metric families, with their label children cached for the hot path."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._multiproc = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.requests = Counter(
            "kserve_stack_requests_total",
            "Inference requests served, by model, status and protocol.",
            ["model", "status", "protocol"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "kserve_stack_inflight_requests",
            "Inference requests being served now.",
            ["protocol"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.stages = {
            stage: Histogram(
                f"request_{stage}_seconds",
                f"Latency of the {stage} stage.",
                ["model_name"],
                registry=self.registry,
                buckets=_BUCKETS,
            )
            for stage in ("preprocess", "predict", "postprocess", "explain")
        }
        self._req_children: dict[tuple[str, str, str], Any] = {}
        self._stage_children: dict[tuple[str, str], Any] = {}
        self._inflight_children: dict[str, Any] = {}

    def observe_stage(self, stage: str, model: str, seconds: float) -> None:
        child = self._stage_children.get((stage, model))
        if child is None:
            child = self._stage_children[(stage, model)] = self.stages[stage].labels(model)
        child.observe(seconds)

    def count_request(self, model: str, status: str, protocol: str) -> None:
        key = (model, status, protocol)
        child = self._req_children.get(key)
        if child is None:
            child = self._req_children[key] = self.requests.labels(model, status, protocol)
        child.inc()

    def inflight_gauge(self, protocol: str) -> Any:
        child = self._inflight_children.get(protocol)
        if child is None:
            child = self._inflight_children[protocol] = self.inflight.labels(protocol)
        return child

    def exposition(self) -> bytes:
        """The text exposition of every metric (summed over workers in multi-process mode)."""
        if self._multiproc:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
