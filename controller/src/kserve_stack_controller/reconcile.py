"""One reconcile of an InferenceService: read its inputs, build, apply, compute status.

The kopf handlers, the ConfigMap watcher and the ServingRuntime watchers all call
``Reconciler.reconcile``; it is idempotent and safe to call at any time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kserve_stack_api.inferenceservice import InferenceService
from kserve_stack_api.validation import InvalidManifestError, parse
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.apply import Applier
from kserve_stack_controller.builders.inferenceservice import Inputs, LiveWorkload, build
from kserve_stack_controller.builders.workload import component_name
from kserve_stack_controller.cache import RuntimeCache
from kserve_stack_controller.config import ControllerConfig
from kserve_stack_controller.constants import ANN_REVISION, COMPONENTS, LABEL_ISVC
from kserve_stack_controller.errors import InvalidSpecError, ReconcileError
from kserve_stack_controller.events import MESSAGE_LIMIT, EventRecorder
from kserve_stack_controller.kube import Kube
from kserve_stack_controller.status import computed_status, deployment_state, failed_status

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]


@dataclass
class Outcome:
    status: JsonDict
    decisions: list[str] = field(default_factory=list)
    error: ReconcileError | None = None
    pruned: list[tuple[str, str]] = field(default_factory=list)
    #: Problems that do not stop the children (posted as Warning events).
    warnings: list[str] = field(default_factory=list)


def _strip(body: Mapping[str, Any]) -> JsonDict:
    return {k: v for k, v in body.items() if k != "status"}


def parse_runtimes(items: list[JsonDict], kind: type[Any]) -> list[Any]:
    parsed = []
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        try:
            parsed.append(kind.model_validate(_strip(item)))
        except ValueError as err:
            log.warning("ignoring %s %s: %s", item.get("kind"), item["metadata"]["name"], err)
    return parsed


class Reconciler:
    def __init__(self, kube: Kube, config: Callable[[], ControllerConfig]) -> None:
        self.kube = kube
        self.applier = Applier(kube)
        self.config = config
        self.runtimes = RuntimeCache(kube, parse_runtimes)
        self.events = EventRecorder(kube)
        self._events_seen: dict[str, tuple[int | None, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        # One reconcile per object at a time (kopf handlers and watchers may overlap).
        self._object_locks: dict[str, threading.Lock] = {}

    def _object_lock(self, uid: str) -> threading.Lock:
        with self._lock:
            return self._object_locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        """Drop what is remembered of a deleted InferenceService."""
        with self._lock:
            self._events_seen.pop(uid, None)
            self._object_locks.pop(uid, None)
        self.applier.forget(uid)

    def reconcile(
        self,
        body: Mapping[str, Any],
        quick: bool = False,
        superseded: Callable[[], bool] | None = None,
    ) -> Outcome:
        """Reconcile one InferenceService. ``quick`` (a child Deployment changed): the
        children this process applied, unchanged since, are not applied again.
        ``superseded`` tells whether another reconcile of the object is already asked for
        (a child changed meanwhile): the status is then left to that one, which follows at
        once and would overwrite it."""
        meta = body["metadata"]
        with self._object_lock(meta["uid"]):
            outcome = self._reconcile(body, quick)
            previous = body.get("status") or {}
            if _status_changed(previous, outcome.status) and not (superseded and superseded()):
                self._patch_status(meta, previous, outcome.status)
            self._post_events(body, outcome)
            return outcome

    def _patch_status(
        self, meta: Mapping[str, Any], previous: Mapping[str, Any], status: JsonDict
    ) -> None:
        try:
            self.kube.patch_status(
                "InferenceService", meta["name"], meta.get("namespace"), replacing(previous, status)
            )
        except ApiException as err:
            if err.status != 404:
                raise
            log.info(
                "InferenceService %s/%s is gone; status not written",
                meta.get("namespace"),
                meta["name"],
            )

    def _reconcile(self, body: Mapping[str, Any], quick: bool) -> Outcome:
        meta = body["metadata"]
        namespace = meta.get("namespace")
        previous = (body.get("status") or {}).get("conditions") or []
        try:
            try:
                isvc = parse(_strip(body))
            except InvalidManifestError as err:
                raise InvalidSpecError("; ".join(err.problems)) from None
            assert isinstance(isvc, InferenceService)
            # One list of this InferenceService's Deployments (not one GET per component).
            listed = {
                d["metadata"]["name"]: d
                for d in self.kube.list("Deployment", namespace, f"{LABEL_ISVC}={meta['name']}")
                if _owned_by(d, meta["uid"])
            }
            live: dict[str, LiveWorkload] = {}
            for component in COMPONENTS:
                found = listed.get(component_name(meta["name"], component))
                if found is not None:
                    live[component] = LiveWorkload(
                        revision=(found["metadata"].get("annotations") or {}).get(ANN_REVISION),
                        replicas=(found.get("spec") or {}).get("replicas"),
                        ready=deployment_state(found).ready,
                    )
            inputs = Inputs(
                isvc=isvc,
                config=self.config(),
                namespace_runtimes=self.runtimes.namespace_runtimes(namespace),
                cluster_runtimes=self.runtimes.cluster_runtimes(),
                live=live,
            )
            plan = build(inputs)
            result = self.applier.apply_children(
                body, plan.objects, plan.keep, listed if quick else None
            )
            deployments = result.live("Deployment")
            for kind, name in plan.keep:
                if kind == "Deployment" and name not in deployments:
                    kept = listed.get(name) or self.kube.get("Deployment", name, namespace)
                    if kept is not None:
                        deployments[name] = kept
            routed = bool(result.live("HTTPRoute") or result.live("Ingress")) or (plan.url is None)
            status = computed_status(plan, deployments, routed, meta.get("generation"), previous)
            warnings = [
                f"{problem}: the Gateway ignores a route's backend in another namespace "
                "without it" for problem in self.applier.ensure_shared(plan.shared)
            ]  # fmt: skip
            return Outcome(status, plan.decisions, None, result.pruned, warnings)
        except ReconcileError as err:
            log.warning(
                "InferenceService %s/%s: %s: %s", namespace, meta["name"], err.reason, err.message
            )
            return Outcome(failed_status(err, meta.get("generation"), previous), [], err)

    # ------------------------------------------------------------------ events

    def _post_events(self, body: Mapping[str, Any], outcome: Outcome) -> None:
        meta = body["metadata"]
        lines: list[tuple[str, str, str]] = []
        if outcome.error is not None:
            lines.append(("Warning", outcome.error.reason, outcome.error.message))
        # The decisions of one reconcile go out as one event (or a few, when long): an event
        # is a write to etcd, and an InferenceService makes several decisions at once.
        lines += [("Normal", "Reconciled", m) for m in _joined(outcome.decisions, MESSAGE_LIMIT)]
        lines += [("Warning", "SharedObjectFailed", w) for w in outcome.warnings]
        lines += [
            ("Normal", "Pruned", f"deleted {k} {n}: no longer desired") for k, n in outcome.pruned
        ]
        key = (meta.get("generation"), tuple(f"{t}/{r}/{m}" for t, r, m in lines))
        with self._lock:
            if self._events_seen.get(meta["uid"]) == key:
                return
            self._events_seen[meta["uid"]] = key
        for event_type, reason, message in lines:
            log.log(
                logging.WARNING if event_type == "Warning" else logging.INFO,
                "InferenceService %s/%s: %s: %s",
                meta.get("namespace"),
                meta["name"],
                reason,
                message,
            )
            self.events.record(body, event_type, reason, message)


def _joined(parts: list[str], limit: int) -> list[str]:
    """``parts`` joined by "; " into as few messages of at most ``limit`` characters as fit."""
    messages: list[str] = []
    for part in parts:
        if messages and len(messages[-1]) + 2 + len(part) <= limit:
            messages[-1] += "; " + part
        else:
            messages.append(part)
    return messages


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])


def _status_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    def norm(status: Mapping[str, Any]) -> Any:
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conditions}

    return bool(norm(before) != norm(after))


def replacing(before: Mapping[str, Any], after: Mapping[str, Any]) -> JsonDict:
    """A merge patch that turns ``before`` into ``after`` (keys gone are set to null)."""
    patch: JsonDict = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            patch[key] = replacing(old, value)
        else:
            patch[key] = value
    return patch
