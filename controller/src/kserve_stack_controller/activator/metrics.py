"""The activator's Prometheus metrics (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kserve_stack_controller.constants import ACTIVATOR_PENDING_METRIC


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("namespace", "service")
        self.pending = Gauge(
            ACTIVATOR_PENDING_METRIC,
            "Requests held until the service has a ready endpoint (KEDA's activation trigger).",
            labels,
            registry=self.registry,
        )
        self.inflight = Gauge(
            "kserve_stack_activator_inflight_requests",
            "Requests being forwarded to the service.",
            labels,
            registry=self.registry,
        )
        self.requests = Counter(
            "kserve_stack_activator_requests",
            "Requests answered, by status code (unknown or malformed targets: empty labels).",
            (*labels, "code"),
            registry=self.registry,
        )
        self.hold_seconds = Histogram(
            "kserve_stack_activator_hold_seconds",
            "Time a request was held before the service had a ready endpoint (cold start).",
            labels,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.scale_ups = Counter(
            "kserve_stack_activator_scale_ups",
            "Deployments the activator scaled from 0 to 1 (--wake scale).",
            labels,
            registry=self.registry,
        )
