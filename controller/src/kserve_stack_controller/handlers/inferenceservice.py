"""InferenceService handlers: create / update / resume reconcile; Deployment events of the
children refresh status and put hand-edited or deleted children back."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from kserve_stack_controller.cache import ISVC_KIND
from kserve_stack_controller.constants import LABEL_ISVC, LABEL_MANAGED_BY, MANAGED_BY
from kserve_stack_controller.state import Operator

log = logging.getLogger(__name__)


def _reconcile(operator: Operator, body: Any) -> None:
    try:
        outcome = operator.reconcile(dict(body))
    except ApiException as err:
        if err.status in (409, 429) or err.status >= 500:
            raise kopf.TemporaryError(
                f"API server answered {err.status}: {err.reason}", delay=2
            ) from None
        raise kopf.TemporaryError(
            f"API server answered {err.status}: {err.reason}", delay=10
        ) from None
    ready: dict[str, Any] = next(
        (c for c in outcome.status.get("conditions") or [] if c["type"] == "Ready"), {}
    )
    log.debug(
        "InferenceService %s/%s: Ready=%s %s",
        body["metadata"].get("namespace"),
        body["metadata"]["name"],
        ready.get("status"),
        ready.get("reason") or "",
    )


#: Children besides Deployments, watched so that a hand-deleted or hand-edited one is put back.
OTHER_CHILDREN: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("keda.sh", "v1alpha1", "scaledobjects"),
    ("gateway.networking.k8s.io", "v1", "httproutes"),
    ("networking.k8s.io", "v1", "ingresses"),
)


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    group, version, plural = "serving.kserve.io", "v1beta1", "inferenceservices"

    def in_scope(namespace: str | None, **_: Any) -> bool:
        return operator.in_scope(namespace)

    @kopf.on.resume(group, version, plural, registry=registry, when=in_scope)
    @kopf.on.create(group, version, plural, registry=registry, when=in_scope)
    @kopf.on.update(group, version, plural, registry=registry, when=in_scope)
    def reconcile_isvc(body: kopf.Body, **_: Any) -> None:
        _reconcile(operator, body)

    @kopf.on.delete(group, version, plural, registry=registry, optional=True, when=in_scope)
    def deleted(name: str, namespace: str | None, uid: str, **_: Any) -> None:
        # Children carry owner references: the garbage collector deletes them.
        operator.forget(uid)
        log.info(
            "InferenceService %s/%s deleted; its children are garbage-collected", namespace, name
        )

    children: dict[str, Any] = {  # kopf.PRESENT: the label must exist
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_ISVC: kopf.PRESENT,
    }

    def refresh_owner_now(event: kopf.RawEvent, quick: bool) -> None:
        try:
            isvc = operator.owner_of(dict(event.get("object") or {}))
            if isvc is not None:
                operator.refresh(isvc, quick=quick)
        except (ApiException, urllib3.exceptions.HTTPError) as err:
            # The API server is away or busy: kopf drops a failed event, and the watch's
            # next events (or the resume after a restart) bring the owner up to date.
            meta = (event.get("object") or {}).get("metadata") or {}
            log.warning(
                "could not refresh the owner of %s/%s after a child event: %s",
                meta.get("namespace"),
                meta.get("name"),
                getattr(err, "reason", None) or type(err).__name__,
            )

    async def refresh_owner(event: kopf.RawEvent, quick: bool) -> None:
        # Children's events are many (every status change of a Deployment): handled on the
        # event loop, with no hop to a thread, when the owner is read from the watch cache;
        # the refresh itself runs in the operator's refresh threads.
        if ISVC_KIND in operator.cache.primed:
            refresh_owner_now(event, quick)
        else:  # read from the API server: not on the event loop
            await asyncio.to_thread(refresh_owner_now, event, quick)

    @kopf.on.event("apps", "v1", "deployments", registry=registry, labels=children)
    async def child_changed(event: kopf.RawEvent, **_: Any) -> None:
        # A status change of a Deployment: re-apply only what changed since our last apply
        # (a Deployment whose spec someone edited, a deleted one); refresh the status.
        await refresh_owner(event, quick=event.get("type") != "DELETED")

    async def other_child_changed(event: kopf.RawEvent, **_: Any) -> None:
        # Any other child that disappears or that someone edits by hand is put back at once;
        # status updates (a route accepted, an autoscaler's figures) change nothing we set.
        if event.get("type") == "DELETED":
            await refresh_owner(event, quick=False)
        elif event.get("type") == "MODIFIED":
            obj: dict[str, Any] = dict(event.get("object") or {})
            owners = (obj.get("metadata") or {}).get("ownerReferences") or []
            uid = next((o.get("uid") for o in owners if o.get("kind") == "InferenceService"), None)
            if uid and operator.reconciler.applier.drifted(uid, obj):
                meta = obj["metadata"]
                log.info(
                    "%s %s/%s was edited by hand: putting it back",
                    obj.get("kind"),
                    meta.get("namespace"),
                    meta.get("name"),
                )
                await refresh_owner(event, quick=False)

    for group, version, plural in OTHER_CHILDREN:
        where = (f"{group}/{version}" if group else version, plural)  # "v1": the core group
        kopf.on.event(*where, registry=registry, labels=children)(other_child_changed)
