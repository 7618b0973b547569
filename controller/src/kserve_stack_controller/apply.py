"""The one write path to the API server: server-side apply with one field manager and an
owner reference to the InferenceService, and pruning (by label) of the children that are
no longer desired. The stable revision kept during a canary is neither applied nor pruned.

What was applied is remembered per InferenceService (a digest of each child, the
Deployments' generation, the set pruned against), so that a reconcile caused by a child's
status change applies nothing that is unchanged, and children are listed for pruning only
when the desired set changed. A new process remembers nothing and does everything once."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.constants import (
    FIELD_MANAGER,
    LABEL_ISVC,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)
from kserve_stack_controller.errors import ReconcileError
from kserve_stack_controller.kube import Kube

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]

#: Every kind an InferenceService may own, in the order they are pruned.
CHILD_KINDS = (
    "HTTPRoute",
    "Ingress",
    "ScaledObject",
    "HorizontalPodAutoscaler",
    "Service",
    "Deployment",
)

_CRD_HINT = {
    "ScaledObject": "install KEDA (keda.sh/v1alpha1) or use autoscalerClass hpa",
    "HTTPRoute": "install the Gateway API CRDs or set ingress.enableGatewayApi false in "
    "inferenceservice-config",
}


class MissingKindError(ReconcileError):
    reason = "MissingCustomResourceDefinition"


def owner_reference(owner: Mapping[str, Any]) -> JsonDict:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_owner(obj: JsonDict, owner: Mapping[str, Any]) -> JsonDict:
    """``obj`` with ``owner`` as its controller; ``obj`` is left as it is, and what they
    share is only read afterwards (sent, digested), never changed."""
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(owner)]}}


@dataclass
class ApplyResult:
    applied: list[JsonDict] = field(default_factory=list)
    pruned: list[tuple[str, str]] = field(default_factory=list)

    def live(self, kind: str) -> dict[str, JsonDict]:
        return {o["metadata"]["name"]: o for o in self.applied if o.get("kind") == kind}


@dataclass
class _Applied:
    """What this process last applied for one InferenceService."""

    digests: dict[tuple[str, str], tuple[str, int | None]] = field(default_factory=dict)
    #: The objects applied, to tell a hand edit of a child from a status update.
    #: Compact JSON (parsed only when another manager wrote the child): at 1,000 services
    #: the objects as dicts would cost far more memory. Deployments are judged by generation.
    desired: dict[tuple[str, str], bytes] = field(default_factory=dict)
    pruned_for: frozenset[tuple[str, str]] | None = None


def _digest(obj: JsonDict) -> str:
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Applier:
    def __init__(self, kube: Kube, field_manager: str = FIELD_MANAGER) -> None:
        self.kube = kube
        self.field_manager = field_manager
        self._lock = threading.Lock()
        self._applied: dict[str, _Applied] = {}
        #: Digests of the shared objects (not owned) this process applied.
        self._shared: dict[tuple[str, str | None, str], str] = {}

    def forget(self, uid: str) -> None:
        with self._lock:
            self._applied.pop(uid, None)

    def _memo(self, uid: str) -> _Applied:
        with self._lock:
            return self._applied.setdefault(uid, _Applied())

    def apply_children(
        self,
        owner: Mapping[str, Any],
        desired: Iterable[JsonDict],
        keep: set[tuple[str, str]],
        live_deployments: Mapping[str, JsonDict] | None = None,
    ) -> ApplyResult:
        """Apply ``desired`` and prune the rest. With ``live_deployments`` (the owner's
        Deployments, just listed), a child whose digest equals what this process last
        applied is not applied again: a Deployment only while its ``generation`` is the one
        that apply produced (anyone's spec edit changes it), other kinds always."""
        result = ApplyResult()
        memo = self._memo(owner["metadata"]["uid"])
        wanted: set[tuple[str, str]] = set(keep)
        for obj in desired:
            key = (obj["kind"], obj["metadata"]["name"])
            wanted.add(key)
            owned = with_owner(obj, owner)
            digest = _digest(owned)
            if live_deployments is not None:
                known = memo.digests.get(key)
                if known is not None and known[0] == digest:
                    if obj["kind"] != "Deployment":
                        result.applied.append({"kind": key[0], "metadata": {"name": key[1]}})
                        continue
                    current = live_deployments.get(key[1])
                    if current is not None and current["metadata"].get("generation") == known[1]:
                        result.applied.append({"kind": "Deployment", **current})
                        continue
            try:
                live = self._apply(owned)
            except ApiException as err:
                if err.status == 404 and obj["kind"] in _CRD_HINT:
                    raise MissingKindError(
                        f"the cluster does not serve {obj['apiVersion']} {obj['kind']}: "
                        f"{_CRD_HINT[obj['kind']]}"
                    ) from None
                if err.status in (400, 422):
                    raise ReconcileError(
                        f"the API server refused {obj['kind']} {obj['metadata']['name']}: "
                        f"{_message(err)}"
                    ) from None
                raise
            live.setdefault("kind", obj["kind"])
            result.applied.append(live)
            memo.digests[key] = (digest, live.get("metadata", {}).get("generation"))
            if obj["kind"] != "Deployment":
                memo.desired[key] = orjson.dumps(owned)
        if memo.pruned_for != frozenset(wanted):
            result.pruned = self.prune(owner, wanted)
            memo.pruned_for = frozenset(wanted)
        for key in set(memo.digests) - wanted:
            del memo.digests[key]
            memo.desired.pop(key, None)
        return result

    def _apply(self, owned: JsonDict) -> JsonDict:
        """Server-side apply of one child. Apply leaves list items that another manager
        added by hand (a Service port, a route rule) in place, and may then be refused
        (a duplicate port name): for kinds other than Deployments (whose replicas an
        autoscaler owns) a merge patch of the spec, which replaces lists whole, puts the
        child back first."""
        kind, meta = owned["kind"], owned["metadata"]
        refused: ApiException | None = None
        try:
            live = self.kube.apply(owned, self.field_manager)
        except ApiException as err:
            if err.status != 422 or kind == "Deployment" or "spec" not in owned:
                raise
            refused, live = err, {}
        if kind == "Deployment" or "spec" not in owned or (live and _holds(live, owned)):
            return live
        log.info(
            "%s %s/%s holds fields set by another manager: replacing them",
            kind,
            meta.get("namespace"),
            meta["name"],
        )
        try:
            self.kube.merge_patch(
                kind, meta["name"], meta.get("namespace"), {"spec": owned["spec"]},
                self.field_manager,
            )  # fmt: skip
        except ApiException as err:
            if refused is not None and err.status == 404:
                raise refused from None  # not there: the apply itself was refused
            raise
        return self.kube.apply(owned, self.field_manager)

    def ensure_shared(self, objects: Iterable[JsonDict]) -> list[str]:
        """Apply objects that several owners need and none owns (the activator's
        ReferenceGrant of a namespace), each once per process while it is unchanged.
        Returns what could not be applied (tried again on the next reconcile)."""
        problems = []
        for obj in objects:
            meta = obj["metadata"]
            key = (obj["kind"], meta.get("namespace"), meta["name"])
            digest = _digest(obj)
            with self._lock:
                if self._shared.get(key) == digest:
                    continue
            try:
                self.kube.apply(obj, self.field_manager)
            except ApiException as err:
                if err.status >= 500 or err.status in (409, 429):
                    raise
                problems.append(
                    f"could not apply {obj['kind']} {meta.get('namespace')}/{meta['name']} "
                    f"({err.status}: {_message(err)})"
                )
                continue
            log.info("applied %s %s/%s", obj["kind"], meta.get("namespace"), meta["name"])
            with self._lock:
                self._shared[key] = digest
        return problems

    def drifted(self, owner_uid: str, live: Mapping[str, Any]) -> bool:
        """True when ``live`` (a child as the API server has it) was written by another field
        manager and no longer holds every field this process applied to it: someone edited
        it by hand. Fields others add (defaults, status) are no drift. Unknown children
        (nothing applied yet here) are not judged."""
        with self._lock:
            memo = self._applied.get(owner_uid)
        key = (str(live.get("kind")), str(live["metadata"].get("name")))
        wanted = memo.desired.get(key) if memo is not None else None
        # Only another manager's write of the main resource can be an edit: an event of our
        # own earlier apply may arrive after a newer one changed what is wanted.
        foreign = any(
            entry.get("manager") != self.field_manager and not entry.get("subresource")
            for entry in live["metadata"].get("managedFields") or []
        )
        return wanted is not None and foreign and not _holds(live, orjson.loads(wanted))

    def prune(
        self, owner: Mapping[str, Any], wanted: set[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        meta = owner["metadata"]
        selector = f"{LABEL_ISVC}={meta['name']},{LABEL_MANAGED_BY}={MANAGED_BY}"
        pruned = []
        for kind in CHILD_KINDS:
            for child in self.kube.list(kind, meta.get("namespace"), selector):
                name = child["metadata"]["name"]
                owners = child["metadata"].get("ownerReferences") or []
                if (kind, name) in wanted or not any(o.get("uid") == meta["uid"] for o in owners):
                    continue
                if self.kube.delete(kind, name, meta.get("namespace")):
                    log.info(
                        "pruned %s %s/%s: no longer desired", kind, meta.get("namespace"), name
                    )
                    pruned.append((kind, name))
        return pruned


def _holds(live: Any, wanted: Any) -> bool:
    """``live`` holds every field of ``wanted`` with the same value (lists item by item)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(
            k in live and _holds(live[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(_holds(a, b) for a, b in zip(live, wanted, strict=True))
        )
    return bool(live == wanted)


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message", err.reason))
    except (TypeError, ValueError):
        return str(err.reason)
