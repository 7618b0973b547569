"""The controller's own metrics in Prometheus text format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reconciles: dict[str, int] = defaultdict(int)
        self.reconcile_seconds_sum = 0.0
        self.admissions: dict[tuple[str, str], int] = defaultdict(int)

    def reconciled(self, result: str, seconds: float) -> None:
        with self._lock:
            self.reconciles[result] += 1
            self.reconcile_seconds_sum += seconds

    def reconcile_count(self) -> int:
        with self._lock:
            return sum(self.reconciles.values())

    def admitted(self, webhook: str, allowed: bool) -> None:
        with self._lock:
            self.admissions[(webhook, "true" if allowed else "false")] += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP kserve_stack_controller_reconciles_total InferenceService reconciles.",
                "# TYPE kserve_stack_controller_reconciles_total counter",
            ]
            lines += [
                f'kserve_stack_controller_reconciles_total{{result="{r}"}} {n}'
                for r, n in sorted(self.reconciles.items())
            ]
            lines += [
                "# HELP kserve_stack_controller_reconcile_seconds_total Time spent reconciling.",
                "# TYPE kserve_stack_controller_reconcile_seconds_total counter",
                f"kserve_stack_controller_reconcile_seconds_total {self.reconcile_seconds_sum}",
                "# HELP kserve_stack_controller_admissions_total Admission reviews answered.",
                "# TYPE kserve_stack_controller_admissions_total counter",
            ]
            lines += [
                f'kserve_stack_controller_admissions_total{{webhook="{w}",allowed="{a}"}} {n}'
                for (w, a), n in sorted(self.admissions.items())
            ]
        return "\n".join(lines) + "\n"
